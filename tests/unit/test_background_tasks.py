"""One guarded way to start a background task, in every layer: a task that fails is logged
with its name (never silent), one its starter handles is not, and nothing under devloop/
starts a task past `devloop.model.background.spawn`."""

from __future__ import annotations

import ast
import asyncio
import logging
from pathlib import Path

from devloop.model import background

PACKAGE = Path(background.__file__).resolve().parents[1]  # devloop/
STARTERS = {"create_task", "ensure_future"}


async def _fail() -> None:
    await asyncio.sleep(0)
    raise RuntimeError("the watch broke")


async def test_a_failing_task_is_logged_with_its_name(caplog):
    with caplog.at_level(logging.ERROR, logger=background.__name__):
        task = background.spawn(_fail(), name="watch pods in default")
        await asyncio.wait([task])
        await asyncio.sleep(0)  # done callbacks run on the next turn
    [record] = [r for r in caplog.records if r.name == background.__name__]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "task watch pods in default failed"
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    assert "RuntimeError: the watch broke" in caplog.text


async def test_a_task_its_starter_handles_is_not_logged(caplog):
    with caplog.at_level(logging.DEBUG):
        task = background.spawn(_fail(), name="evaluate Tiltfile", handled=True)
        await asyncio.wait([task])
        await asyncio.sleep(0)
    assert isinstance(task.exception(), RuntimeError)
    assert caplog.records == []


def _task_starts(path: Path) -> list[int]:
    """The lines of `path` that call create_task or ensure_future (asyncio's, a loop's,
    or imported by name)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        called = node.func
        name = (called.attr if isinstance(called, ast.Attribute)
                else called.id if isinstance(called, ast.Name) else "")
        if name in STARTERS:
            lines.append(node.lineno)
    return lines


def test_only_spawn_starts_tasks():
    own = Path(background.__file__).resolve()
    assert _task_starts(own), "the scan finds spawn's own create_task"
    elsewhere = {f"{path.relative_to(PACKAGE.parent)}:{line}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path.resolve() != own
                 for line in _task_starts(path)}
    assert elsewhere == set(), "start background tasks with devloop.model.background.spawn"
