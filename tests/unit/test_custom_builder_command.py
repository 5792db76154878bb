"""custom_build runs a string command through the shell once and a list without one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devloop.build.custom_builder import CustomBuilder
from devloop.model import plan as p


class Images:
    """The Docker seam: every ref exists with one ID; tags are recorded."""

    def __init__(self) -> None:
        self.tags: list[tuple[str, str, str]] = []

    async def image_id(self, ref: str) -> str | None:
        return "sha256:" + "ab" * 32

    async def tag(self, image_id: str, repo: str, tag: str) -> None:
        self.tags.append((image_id, repo, tag))


def build(target: p.CustomBuild) -> list[str]:
    lines: list[str] = []
    asyncio.run(CustomBuilder(Images(), clock=lambda: 1000.0).build(
        target, log=lines.append, environ={"PATH": "/usr/bin:/bin"}))
    return lines


def test_a_string_command_runs_through_the_shell_once(tmp_path: Path):
    out = tmp_path / "out.txt"
    command = f'echo "$EXPECTED_REF" > {out} && echo second word >> {out}'
    lines = build(p.CustomBuild(ref="app", command=("sh", "-c", command), shell=True, deps=(),
                                dir=str(tmp_path)))
    assert out.read_text().splitlines() == ["app:devloop-build-1000", "second word"]
    assert f"Running custom build cmd {command!r}" in lines


def test_a_list_command_runs_without_a_shell(tmp_path: Path):
    lines = build(p.CustomBuild(ref="app", command=("echo", "$EXPECTED_REF", "a b"),
                                shell=False, deps=(), dir=str(tmp_path)))
    assert "$EXPECTED_REF a b" in lines


def test_a_shell_command_given_as_its_text_alone_runs_through_the_shell_once(tmp_path: Path):
    out = tmp_path / "out.txt"
    build(p.CustomBuild(ref="app", command=(f"echo a b > {out}",), shell=True, deps=(),
                        dir=str(tmp_path)))
    assert out.read_text() == "a b\n"
