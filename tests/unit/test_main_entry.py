"""The `devloop` entry point: a Ctrl-C while the command line is still loading."""

from __future__ import annotations

import importlib.abc
import sys
from types import ModuleType

import pytest

import devloop.__main__ as entry


class _InterruptedImport(importlib.abc.MetaPathFinder):
    """Raises KeyboardInterrupt when `devloop.cli` is imported, as a Ctrl-C during its
    imports does."""

    def find_spec(self, name: str, path: object, target: ModuleType | None = None) -> None:
        if name == "devloop.cli":
            raise KeyboardInterrupt
        return None


def test_ctrl_c_while_loading_ends_with_130_and_no_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delitem(sys.modules, "devloop.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_InterruptedImport(), *sys.meta_path])
    assert entry.main() == entry.INTERRUPTED
    assert capsys.readouterr() == ("", "")


def test_once_loaded_the_command_line_runs(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["devloop", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        entry.main()
    assert exit_info.value.code == 0
    assert "usage: devloop" in capsys.readouterr().out
