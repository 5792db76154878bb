"""What a push to a TLS + password registry costs: bytes sent and time, first and after an edit.

Builds an image of a 5 MB layer of random bytes (incompressible, like a binary) plus a small
file, pushes it with devloop's Pusher to the test environment's `registry.devloop.test`
(TLS with its own CA, htpasswd login made with `docker login`), then changes only the small
file and pushes again, ROUNDS times. Prints the engine-reported layer bytes and the wall
time of each push, and the median of the rebuild pushes.

    eval "$(scripts/testenv env)" && .venv/bin/python bench/registry_push.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devloop.build import registry as reg  # noqa: E402
from devloop.build.docker_builder import BuiltImage  # noqa: E402
from devloop.build.push import Pusher, PushResult  # noqa: E402

LAYER_BYTES = 5_000_000


def build(api: docker.APIClient, context: Path, tag: str) -> BuiltImage:
    for item in api.build(path=str(context), tag=tag, decode=True, rm=True):
        if "error" in item:
            raise RuntimeError(item["error"])
    image_id = str(api.inspect_image(tag)["Id"])
    repo, _, name_tag = tag.rpartition(":")
    return BuiltImage(ref=tag, image_id=image_id, repo=repo, tag=name_tag)


def push(pusher: Pusher, image: BuiltImage, registry: reg.Registry) -> tuple[PushResult, float]:
    started = time.monotonic()
    result = pusher.push_blocking(image, registry, lambda line: None)
    return result, time.monotonic() - started


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    host = os.environ.get("DEVLOOP_TLS_REGISTRY", "")
    if not host:
        print("run `eval \"$(scripts/testenv env)\"` first", file=sys.stderr)
        return 2
    api = docker.APIClient(version="auto")
    with tempfile.TemporaryDirectory(prefix="devloop-bench-push-") as tmp:
        config = Path(tmp) / "docker-config"
        config.mkdir()
        subprocess.run(["docker", "--config", str(config), "login", "-u",
                        os.environ["DEVLOOP_TLS_REGISTRY_USER"], "--password-stdin", host],
                       input=os.environ["DEVLOOP_TLS_REGISTRY_PASSWORD"], text=True,
                       check=True, capture_output=True)
        os.environ["DOCKER_CONFIG"] = str(config)
        context = Path(tmp) / "context"
        context.mkdir()
        (context / "blob.bin").write_bytes(os.urandom(LAYER_BYTES))
        (context / "Dockerfile").write_text(
            "FROM scratch\nCOPY blob.bin /blob.bin\nCOPY small.txt /small.txt\n")
        name = f"{host}/bench-push-{uuid.uuid4().hex[:8]}"
        registry = reg.Registry(host=host)
        pusher = Pusher()
        rows = []
        for index in range(rounds + 1):
            (context / "small.txt").write_text(f"round {index}\n")
            image = build(api, context, f"{name}:r{index}")
            result, seconds = push(pusher, image, registry)
            rows.append((index, result, seconds))
            print(f"push {index} ({'first' if index == 0 else 'after editing small.txt'}): "
                  f"{seconds:.2f}s, {result.stats.summary()}, attempts {result.attempts}")
        for index in range(rounds + 1):
            api.remove_image(f"{name}:r{index}", force=True)
        warm = [seconds for index, _, seconds in rows if index > 0]
        warm_bytes = [r.stats.bytes_read for index, r, _ in rows if index > 0]
        print(f"\nregistry {host} (TLS, htpasswd), image layers: {LAYER_BYTES} B random + "
              "one small file")
        print(f"first push: {rows[0][1].stats.bytes_read} B of layer content, "
              f"{rows[0][2]:.2f}s")
        print(f"rebuild pushes ({rounds}): median {statistics.median(warm):.2f}s, "
              f"layer bytes {sorted(set(warm_bytes))}")
        print("bytes: the engine's per-layer upload progress (uncompressed layer content "
              "read); time: wall clock of Pusher.push_blocking, login and build excluded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
