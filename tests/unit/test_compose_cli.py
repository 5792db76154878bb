"""The `docker compose` command lines devloop runs (devloop/compose/cli.py)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from devloop.compose.cli import ComposeCli, ComposeError, project_args
from devloop.model import plan as p

PROJECT = p.ComposeProject(config_paths=("/src/compose.yaml", "/src/override.yaml"),
                           project_name="shop", env_file="/src/dev.env",
                           profiles=("debug", "tools"), project_dir="/src")


def test_project_args_are_the_ones_tilt_passes_in_its_order():
    assert project_args(PROJECT) == [
        "--project-name", "shop", "--project-directory", "/src", "--env-file", "/src/dev.env",
        "-f", "/src/compose.yaml", "-f", "/src/override.yaml",
        "--profile", "debug", "--profile", "tools"]


def test_empty_settings_add_no_flags():
    assert project_args(p.ComposeProject(config_paths=("/a.yaml",))) == ["-f", "/a.yaml"]


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in compose command that records its argv and fails on `fail`."""
    log = tmp_path / "argv"
    script = tmp_path / "fake-compose"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {log}
case "$*" in *config*) echo 'warning: x'; echo '{{"services": {{"web": {{"image": "w"}}}}}}';;
  *fail*) echo "boom: bad things"; exit 3;; esac
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("DEVLOOP_DOCKER_COMPOSE_CMD", str(script))
    return log


def run(coro):
    return asyncio.run(coro)


def test_up_passes_no_deps_no_build_detach_and_wait(recorder, tmp_path):
    project = p.ComposeProject(config_paths=("/x.yaml",), project_name="x", wait=True,
                               project_dir=str(tmp_path))
    lines: list[str] = []
    run(ComposeCli(project, environ=dict(os.environ)).up("web", log=lines.append))
    assert recorder.read_text().split() == ["--project-name", "x", "--project-directory",
                                            str(tmp_path), "-f", "/x.yaml", "up", "--no-deps",
                                            "--remove-orphans", "--no-build", "-d", "--wait",
                                            "web"]


def test_down_keeps_volumes_unless_asked(recorder, tmp_path):
    cli = ComposeCli(p.ComposeProject(config_paths=("/x.yaml",), project_dir=str(tmp_path)))
    run(cli.down(volumes=False, log=lambda _: None))
    run(cli.down(volumes=True, log=lambda _: None))
    first, second = recorder.read_text().splitlines()
    assert first.endswith("down --remove-orphans")
    assert second.endswith("down --remove-orphans --volumes")


def test_a_failing_command_is_an_error_with_its_output(recorder, tmp_path):
    cli = ComposeCli(p.ComposeProject(config_paths=("/x.yaml",), project_dir=str(tmp_path)))
    with pytest.raises(ComposeError, match="exit code 3:\nboom: bad things"):
        run(cli.check("fail"))


def test_config_reads_the_json_after_warnings(recorder, tmp_path):
    cli = ComposeCli(p.ComposeProject(config_paths=("/x.yaml",), project_dir=str(tmp_path)))
    assert run(cli.config()) == {"services": {"web": {"image": "w"}}}
