"""The daemon reads the evaluator child's result without loading starlark-go itself: the
Go runtime (its threads and heap) stays out of a process that never runs Starlark."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECK = """
import sys
from devloop.tiltfile.isolated import evaluate_in_child
result = evaluate_in_child(sys.argv[1])
assert [r.name for r in result.plan.resources] == ["hello"], result
print("starlark_go" in sys.modules)
"""


def test_the_child_result_is_read_without_starlark_go(tmp_path: Path) -> None:
    tiltfile = tmp_path / "Tiltfile"
    tiltfile.write_text("local_resource('hello', serve_cmd='sleep 60')\n")
    done = subprocess.run([sys.executable, "-c", CHECK, str(tiltfile)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", done.stdout + done.stderr
