"""What evaluating a Tiltfile gives: the plan and the output printed on the way.

Apart from the evaluator, which loads starlark-go: the daemon unpickles this from its
evaluator child process, and importing the evaluator there would start the Go runtime
(its threads and heap) in a process that never runs Starlark.
"""

from __future__ import annotations

from dataclasses import dataclass

from devloop.model import plan as p


@dataclass(frozen=True)
class Evaluation:
    plan: p.Plan
    output: tuple[str, ...]
