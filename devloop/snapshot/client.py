"""`devloop snapshot -o FILE.html`: asks the running daemon for a snapshot and writes it."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from devloop.client import ClientError, Daemon

# Scrubbing and rendering every kept log line (up to the log budget) takes a few seconds.
SNAPSHOT_TIMEOUT_SECONDS = 120.0
_FILENAME = re.compile(r'filename="([\w.-]+)"')


def run_snapshot(options: argparse.Namespace) -> int:
    daemon = Daemon.from_options(options)
    try:
        with daemon._open("/api/v1/snapshot", timeout=SNAPSHOT_TIMEOUT_SECONDS) as response:
            page = response.read()
            disposition = response.headers.get("Content-Disposition", "")
    except ClientError as exc:
        print(f"devloop snapshot: {exc}", file=sys.stderr)
        return 1
    found = _FILENAME.search(disposition)
    target = Path(options.output or (found.group(1) if found else "devloop-snapshot.html"))
    try:
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(page)
        os.replace(partial, target)
    except OSError as exc:
        print(f"devloop snapshot: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {target} ({len(page) / 1024:.0f} KiB): open it in any browser, offline")
    return 0
