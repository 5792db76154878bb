"""The builtin areas a Tiltfile sees, in the order they contribute to the Plan."""

from __future__ import annotations

from devloop.tiltfile.context import Area, EvalContext


def default_areas(ctx: EvalContext) -> list[Area]:
    return []
