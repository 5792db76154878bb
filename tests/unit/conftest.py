"""Shared fixtures of the unit tests: evaluate a Tiltfile written into a temp directory."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from devloop.tiltfile.evaluator import Evaluation, evaluate


@pytest.fixture
def tiltfile(tmp_path: Path) -> Callable[..., Evaluation]:
    """tiltfile(text, files={relpath: content}, args=()) evaluates `text` as tmp/Tiltfile."""

    def run(text: str, files: dict[str, str] | None = None,
            args: tuple[str, ...] = (), subcommand: str = "up") -> Evaluation:
        for rel, content in (files or {}).items():
            target = tmp_path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(content))
        path = tmp_path / "Tiltfile"
        path.write_text(textwrap.dedent(text))
        return evaluate(str(path), args=args, subcommand=subcommand)

    return run
