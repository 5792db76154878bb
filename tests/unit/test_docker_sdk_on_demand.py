"""The docker SDK (and `requests` under it) loads only when an image is built, pushed or
probed: a session without images never pays for it, and one with images still gets its
errors turned into devloop's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

PROGRAM = """
import asyncio, os, sys
import devloop.cli, devloop.daemon.session, devloop.engine.cluster, devloop.engine.health_wiring
from devloop.build import push, reachability
from devloop.build.docker_builder import BuildError, DockerBuilder
print(sorted(m for m in ("docker", "requests") if m in sys.modules))
os.environ["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
try:
    asyncio.run(DockerBuilder().image_id("example:latest"))
except BuildError as e:
    print(e)
print(reachability._docker_blocking())
print(sorted(m for m in ("docker", "requests") if m in sys.modules))
"""


def test_the_sdk_loads_on_first_use_and_its_errors_are_still_caught() -> None:
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.splitlines()
    assert out[0] == "[]"
    assert out[1].startswith("cannot reach the Docker engine")
    assert out[2].startswith("cannot reach the Docker engine")
    assert out[3] == "['docker', 'requests']"
