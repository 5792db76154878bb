"""Builtins that speak to the user or end the run: warn() and exit().

warn(msg) prints `WARNING: msg` among the Tiltfile's output, in order, as Tilt logs it; it
is not an error. exit(code) stops the Tiltfile where it is called, as a success: what was
declared so far is the result (Tilt's `ErrStopExecution`), and os.environ as changed so
far is the Tiltfile's environment. Starlark has no way to unwind but an error, so exit()
raises one that says so and records that it did; the evaluator asks `stopped_by_exit`
before treating the error as a failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from devloop.tiltfile.context import EvalContext, PlanDraft, is_blob, want_str
from devloop.tiltfile.errors import BuiltinError

EXIT_MESSAGE = "exit() stopped the Tiltfile"


def _shown(value: Any) -> str:
    """How exit() prints its argument: text as is, other values as Starlark writes them."""
    if isinstance(value, str) or is_blob(value):
        return want_str("exit", "code", value)
    if isinstance(value, bool):
        return "True" if value else "False"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


class MessagesArea:
    """warn and exit."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.exited = False
        # The Tiltfile's os.environ when exit() ran (the program's end, which hands it
        # over otherwise, is never reached).
        self.environ: dict[str, str] = {}

    def builtins(self) -> Mapping[str, Any]:
        return {"warn": self.warn}

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        return {"exit": self.exit}

    def contribute(self, draft: PlanDraft) -> None:
        return None

    def warn(self, msg: Any) -> None:
        """warn(msg): print `WARNING: msg` in the Tiltfile log; evaluation goes on."""
        self.ctx.print(f"WARNING: {want_str('warn', 'msg', msg)}")

    def exit(self, environ: dict[str, str], code: Any = None) -> None:
        """exit(code=None): stop running the Tiltfile here, successfully; resources declared
        so far are kept. A `code` other than None is printed first (a string as is)."""
        if code is not None:
            text = _shown(code)
            if text:
                self.ctx.print(text)
        self.exited = True
        self.environ = dict(environ)
        raise BuiltinError(EXIT_MESSAGE)


def stopped_by_exit(areas: Iterable[object]) -> dict[str, str] | None:
    """The Tiltfile's os.environ when the error that ended evaluation was exit() (the run
    succeeded), else None."""
    for area in areas:
        if isinstance(area, MessagesArea) and area.exited:
            return area.environ
    return None
