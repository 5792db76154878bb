"""Writes a snapshot's HTML: the dashboard page with its CSS, its scripts and the data inline."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from devloop.snapshot.page import one_document

DATA_ELEMENT_ID = "devloop-snapshot"
# Nothing in the file may reach the network: no fetches, streams, fonts or images from
# anywhere (a snapshot is opened on another machine, possibly offline, from a bug report).
CONTENT_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; "
                  "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'")

_TOKEN = re.compile(r'<meta name="devloop-token"[^>]*>\s*')


def data_json(data: dict[str, Any]) -> str:
    """JSON for a <script type="application/json"> element: every `<` escaped, so no text in
    a log line can close the element or start a comment."""
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


def render_html(data: dict[str, Any], web_dir: Path) -> str:
    inline = (f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_POLICY}">\n'
              f'  <script type="application/json" id="{DATA_ELEMENT_ID}">{data_json(data)}'
              f"</script>\n  ")
    return _TOKEN.sub("", one_document(web_dir, before_script=inline))
