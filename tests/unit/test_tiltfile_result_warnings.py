"""`devloop tiltfile-result` says the evaluation's warnings on stderr, after what the
Tiltfile printed, and keeps stdout for the JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

IGNORED = ("WARNING: docker_prune_settings: parameter 'max_age_mins' is ignored: devloop "
           "prunes by `disable` only")


def test_warnings_go_to_stderr_once_each(tmp_path: Path) -> None:
    (tmp_path / "Tiltfile").write_text("print('hello')\n"
                                       "docker_prune_settings(max_age_mins=60)\n"
                                       "docker_prune_settings(max_age_mins=60)\n"
                                       "warn('careful')\n"
                                       "local_resource('r', 'true')\n")
    done = subprocess.run([sys.executable, "-m", "devloop", "tiltfile-result"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["hello", "WARNING: careful", IGNORED]
    plan = json.loads(done.stdout)
    assert [r["name"] for r in plan["resources"]] == ["r"]


def test_no_warning_no_warning_line(tmp_path: Path) -> None:
    (tmp_path / "Tiltfile").write_text("local_resource('r', 'true')\n")
    done = subprocess.run([sys.executable, "-m", "devloop", "tiltfile-result"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and "WARNING" not in done.stderr
