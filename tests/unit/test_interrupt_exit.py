"""Ctrl-C ends `devloop up` quietly, even when the cancellation reaches the top as a
CancelledError (asyncio.run re-raises it when the session's task was cancelled twice)."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from devloop import cli
from devloop.daemon import session


@pytest.mark.parametrize("error", [KeyboardInterrupt, asyncio.CancelledError])
def test_an_interrupted_session_ends_with_130_and_no_traceback(monkeypatch, capsys, error):
    async def interrupted(options: argparse.Namespace, args: tuple[str, ...]) -> int:
        raise error()

    monkeypatch.setattr(session, "run_session", interrupted)
    assert cli.main(["up", "--stream"]) == 130
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert "CancelledError" not in captured.err + captured.out
