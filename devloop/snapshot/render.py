"""Writes a snapshot's HTML: the dashboard page with its CSS, its scripts and the data inline."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from devloop.snapshot.bundle import bundle

DATA_ELEMENT_ID = "devloop-snapshot"
# Nothing in the file may reach the network: no fetches, streams, fonts or images from
# anywhere (a snapshot is opened on another machine, possibly offline, from a bug report).
CONTENT_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; "
                  "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'")

_STYLESHEET = re.compile(r'<link rel="stylesheet" href="/static/style\.css">')
_SCRIPT = re.compile(r'<script type="module" src="/static/app\.js"></script>')
_TOKEN = re.compile(r'<meta name="devloop-token"[^>]*>\s*')
_MODULE_PRELOAD = re.compile(r'<link rel="modulepreload"[^>]*>\s*')


class RenderError(Exception):
    """The dashboard's page does not have the shape a snapshot is made from."""


def _script_safe(text: str) -> str:
    """Text that cannot end the <script> or <style> element it is put in."""
    return re.sub(r"</(script|style)", r"<\\/\1", text, flags=re.IGNORECASE)


def data_json(data: dict[str, Any]) -> str:
    """JSON for a <script type="application/json"> element: every `<` escaped, so no text in
    a log line can close the element or start a comment."""
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


def render_html(data: dict[str, Any], web_dir: Path) -> str:
    page = (web_dir / "index.html").read_text(encoding="utf-8")
    css = (web_dir / "style.css").read_text(encoding="utf-8")
    script = bundle(web_dir)
    if not _STYLESHEET.search(page) or not _SCRIPT.search(page):
        raise RenderError(f"{web_dir / 'index.html'}: no stylesheet link or app.js script tag")
    page = _MODULE_PRELOAD.sub("", _TOKEN.sub("", page))
    page = _STYLESHEET.sub(lambda _: f"<style>\n{_script_safe(css)}</style>", page, count=1)
    inline = (f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_POLICY}">\n'
              f'  <script type="application/json" id="{DATA_ELEMENT_ID}">{data_json(data)}'
              f"</script>\n"
              f'  <script type="module">\n{_script_safe(script)}</script>')
    return _SCRIPT.sub(lambda _: inline, page, count=1)
