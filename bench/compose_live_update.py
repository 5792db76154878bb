"""Benchmark: save -> new response for a Docker Compose service, live updated over the Docker API.

How: a temporary project with one Compose service (busybox httpd serving /www, image built by
`docker_build` with a live_update) runs under `devloop up --stream`, no cluster involved.
Each sample rewrites web/www/index.html with a new token and polls http://127.0.0.1:PORT/
until the token answers; the clock starts just before the write and stops at that response,
so it includes the file watcher's debounce, the engine, the archive upload into the container
and, in the restart variant (files synced to /src, which the server copies to /www only when
it starts), `restart_container()` and the server's start. Also printed: devloop's own time
per live update (its "Live update: done in N ms" lines). Needs the test environment's Docker
engine, `docker compose` and the `busybox` image (scripts/testenv up).

    python bench/compose_live_update.py [edits]
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

POLL_SECONDS = 0.005
SETTLE_SECONDS = 0.3  # between samples, so one edit's update does not overlap the next
IMAGE = os.environ.get("DEVLOOP_BENCH_BUSYBOX", "busybox")

COMPOSE = """\
services:
  web:
    image: devloop-bench/web
    ports:
      - "127.0.0.1:{port}:8000"
"""
# The server copies /src to /www when it starts: a file synced to /src shows only after a
# restart, one synced to /www at once.
DOCKERFILE = f"""\
FROM {IMAGE}
COPY www /src
CMD ["sh", "-c", "mkdir -p /www && cp -r /src/. /www/ && exec httpd -f -p 8000 -h /www"]
"""
TILTFILE = """\
docker_compose('compose.yaml', project_name='{project}')
docker_build('devloop-bench/web', 'web', live_update=[
{steps}])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
        return response.read().decode()


def answers(url: str, token: str) -> bool:
    try:
        return token in get(url)
    except OSError:
        return False


@contextlib.contextmanager
def running_up(project: Path, log: Path) -> Iterator[None]:
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devloop", "up", "--stream", "--port", str(free_port())],
            cwd=project, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1",
                 "KUBECONFIG": "/nonexistent/kubeconfig"})
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        subprocess.run([sys.executable, "-m", "devloop", "down"], cwd=project,
                       capture_output=True, check=False, timeout=120)


def measure(variant: str, steps: str, edits: int) -> None:
    with tempfile.TemporaryDirectory(prefix="devloop-bench-compose-") as tmp:
        project = Path(tmp)
        port = free_port()
        (project / "web/www").mkdir(parents=True)
        (project / "web/Dockerfile").write_text(DOCKERFILE)
        (project / "web/www/index.html").write_text("start\n")
        (project / "compose.yaml").write_text(COMPOSE.format(port=port))
        (project / "Tiltfile").write_text(TILTFILE.format(
            project=f"bench{uuid.uuid4().hex[:8]}", steps=steps))
        url = f"http://127.0.0.1:{port}/"
        log = project / "up.log"
        with running_up(project, log):
            deadline = time.monotonic() + 300
            while not answers(url, "start"):
                if time.monotonic() > deadline:
                    sys.exit(f"the service never answered; log:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            samples: list[float] = []
            for index in range(edits):
                token = f"edit-{index}-{uuid.uuid4().hex[:6]}"
                started = time.monotonic()
                (project / "web/www/index.html").write_text(token + "\n")
                while not answers(url, token):
                    if time.monotonic() - started > 60:
                        sys.exit(f"edit {index} never answered; log:\n{log.read_text()[-3000:]}")
                    time.sleep(POLL_SECONDS)
                samples.append((time.monotonic() - started) * 1000)
                time.sleep(SETTLE_SECONDS)
            own = [int(m) for m in re.findall(r"Live update: done in (\d+) ms", log.read_text())]
    samples.sort()
    print(f"{variant}: {edits} edits, save -> new response: median "
          f"{statistics.median(samples):.0f} ms, min {samples[0]:.0f} ms, "
          f"max {samples[-1]:.0f} ms")
    if own:
        print(f"{variant}: devloop's live update itself: median {statistics.median(own):.0f} ms "
              f"over {len(own)} updates")


def main() -> None:
    edits = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"docker compose {subprocess.run(['docker', 'compose', 'version', '--short'], capture_output=True, text=True, check=False).stdout.strip()}, "  # noqa: E501
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    measure("sync", "    sync('web/www', '/www'),\n", edits)
    measure("sync + restart_container()",
            "    sync('web/www', '/src'),\n    restart_container(),\n", edits)


if __name__ == "__main__":
    main()
