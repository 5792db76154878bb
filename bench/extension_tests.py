"""Figure: how many of the tilt-extensions repository's test Tiltfiles devloop evaluates.

How: the repository (a git URL or a local clone, first argument or
DEVLOOP_EXTENSIONS_REPO) is checked out under a fresh data directory's `tilt_modules/`,
exactly where `load("ext://...")` puts it, so that extensions which walk up from their
own file to `tilt_modules` (helm_remote, git_resource...) find it as with Tilt. Then
`devloop tiltfile-result` runs in each `<extension>/test*/` directory holding a Tiltfile,
with DEVLOOP_EXTENSIONS_REPO pointing at the same repository (offline). Prints each
result (ok, or the error's first line) and the count; `--json` also writes them.

    python bench/extension_tests.py [REPO] [--timeout SECONDS] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devloop.tiltfile.loader import ExtensionSettings, checkout_repository


def _first_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Traceback (most recent call last)"):
            continue
        if ": " in line and not line.startswith(("local:", "→")):
            return line
    return lines[-1] if lines else "(no output)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", default=os.environ.get("DEVLOOP_EXTENSIONS_REPO"))
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", dest="json_path", default="")
    options = parser.parse_args()
    if not options.repo:
        parser.error("give the extension repository (git URL or local clone)")
    data_home = tempfile.mkdtemp(prefix="devloop-ext-bench-")
    settings = ExtensionSettings(repo=options.repo, data_dir=os.path.join(data_home, "devloop"))
    root = Path(checkout_repository(options.repo, "", settings, "bench"))
    tests = sorted(root.glob("*/test*/Tiltfile"))
    # The same data directory, so ext:// loads inside the tests use the same checkout.
    env = {**os.environ, "DEVLOOP_EXTENSIONS_REPO": options.repo, "XDG_DATA_HOME": data_home,
           "DEVLOOP_TILTFILE_TIMEOUT": str(options.timeout),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    results: dict[str, str] = {}
    started = time.monotonic()
    for tiltfile in tests:
        name = str(tiltfile.parent.relative_to(root))
        done = subprocess.run([sys.executable, "-m", "devloop", "tiltfile-result"],
                              cwd=tiltfile.parent, env=env, capture_output=True, text=True,
                              timeout=options.timeout + 30, check=False)
        results[name] = "ok" if done.returncode == 0 else _first_error_line(done.stderr)
        print(f"{name}: {results[name]}", flush=True)
    ok = sum(1 for result in results.values() if result == "ok")
    print(f"\n{ok}/{len(results)} test Tiltfiles evaluate (repository {options.repo}, "
          f"checked out at {root}; {time.monotonic() - started:.0f} s)")
    if options.json_path:
        Path(options.json_path).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
