"""Clients of a running daemon: `devloop get/describe/logs/trigger/enable/disable/args`.

They read only the HTTP API, like the dashboard, with the stdlib's urllib; mutations send
the token the daemon wrote to its daemon file.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from devloop.model.kinds import CHANGED, KINDS, Column, Format
from devloop.server.daemon_file import daemon_file, read_daemon_file

TOKEN_HEADER = "X-Devloop-Token"
REQUEST_TIMEOUT_SECONDS = 10.0
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
# The largest page the daemon serves (logs_api.MAX_LIMIT; not imported: clients load no server
# code).
LOG_PAGE = 10000


class ClientError(Exception):
    """Something to tell the user; the command exits 1."""


@dataclass(frozen=True)
class Daemon:
    url: str
    port: int

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> Daemon:
        host = getattr(options, "host", "127.0.0.1") or "127.0.0.1"
        host = "127.0.0.1" if host in WILDCARD_HOSTS else host
        host = f"[{host}]" if ":" in host else host
        port = int(getattr(options, "port", 10350))
        return cls(f"http://{host}:{port}", port)

    def token(self) -> str:
        path = daemon_file(self.port)
        data = read_daemon_file(path)
        if not data or not isinstance(data.get("token"), str):
            raise ClientError(f"no token for the daemon on {self.url}: {path} is missing "
                              "(is this the machine and user that run `devloop up`?)")
        return str(data["token"])

    def _open(self, path: str, *, body: Any = None, timeout: float | None = None,
              stream: bool = False) -> Any:
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers.update({"Content-Type": "application/json", TOKEN_HEADER: self.token()})
        request = urllib.request.Request(self.url + path, data=data, headers=headers,
                                         method="POST" if body is not None else "GET")
        try:
            return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
        except urllib.error.HTTPError as exc:
            message = _error_text(exc.read())
            if exc.code == 403 and body is not None:
                message += (f" (the token in {daemon_file(self.port)} does not match the "
                            f"daemon on {self.url}: was it restarted by another user?)")
            raise ClientError(message) from exc
        except (urllib.error.URLError, ConnectionError) as exc:
            raise ClientError(f"no devloop daemon on {self.url}: start `devloop up`"
                              + (" (or pass --port)" if self.port == 10350 else "")
                              ) from exc

    def get(self, path: str) -> Any:
        with self._open(path, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict[str, Any]) -> Any:
        with self._open(path, body=body, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return json.loads(response.read())

    def events(self, path: str) -> Iterator[dict[str, Any]]:
        """The `data:` payloads of a server-sent event stream, until it ends."""
        with self._open(path, stream=True) as response:
            data: list[str] = []
            for raw in response:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []


def _error_text(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip() or "request failed"


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# -- formatting

def age(timestamp: float | str | None, now: float | None = None) -> str:
    """'42s', '5m', '3h10m', '2d' since a Unix time or an ISO 8601 time (Kubernetes')."""
    if isinstance(timestamp, str):
        try:
            timestamp = datetime.fromisoformat(timestamp).timestamp()
        except ValueError:
            return "-"
    if not timestamp:
        return "-"
    seconds = max(0, int((now or time.time()) - timestamp))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    return f"{seconds // 86400}d"


def _first_line(text: Any, width: int = 60) -> str:
    line = str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""
    return line if len(line) <= width else line[:width - 1] + "…"


def _columns(kind: str, wide: bool) -> list[tuple[str, Any]]:
    """(header, function of the object) for each column of `devloop get <kind>`: the kind's
    columns in devloop.model.kinds; a kind it does not know shows when it changed."""
    known = KINDS.get(kind)
    columns = known.columns if known is not None else (CHANGED,)
    return [(column.header, functools.partial(_shown, column, wide)) for column in columns
            if wide or not column.wide]


def _shown(column: Column, wide: bool, obj: dict[str, Any]) -> Any:
    value = column.value(obj)
    if column.format == Format.AGE:
        return age(value)
    if column.format == Format.SECONDS:
        return f"{float(value or 0):.1f}s"
    if column.format == Format.LINE:
        return _first_line(value, 200 if wide else column.width)
    if column.format == Format.JOIN:
        return " ".join(str(item) for item in value or [])
    if column.format == Format.RESULT:
        return "error" if value else "ok"
    return value


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "-"
    return str(value)


def table(kind: str, items: list[dict[str, Any]], *, wide: bool = False) -> str:
    columns = [("NAME", lambda obj: obj["metadata"]["name"]), *_columns(kind, wide)]
    rows = [[header for header, _ in columns]]
    rows += [[_cell(value(obj)) for _, value in columns] for obj in items]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    return "\n".join("   ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                        strict=True)).rstrip()
                     for row in rows)


def _dump(data: Any, output: str) -> str:
    if output == "yaml":
        import yaml

        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True)).rstrip()
    return json.dumps(data, indent=2)


def describe(daemon: Daemon, name: str) -> str:
    resource = daemon.get(f"/api/v1/resource/{_quote(name)}")
    spec, status = resource["spec"], resource["status"]

    def related(kind: str) -> list[dict[str, Any]]:
        return [obj for obj in daemon.get(f"/api/v1/{kind}")["items"]
                if obj["spec"].get("resource") == name]

    out = [f"Name:         {name}", f"Type:         {spec.get('type', '')}",
           f"Labels:       {', '.join(spec.get('labels', [])) or '-'}",
           f"Depends on:   {', '.join(spec.get('resourceDeps', [])) or '-'}",
           f"Trigger mode: {spec.get('triggerMode', '')}",
           f"Enabled:      {_cell(status.get('enabled', True))}",
           f"Update:       {status.get('updateStatus', '')}"
           + (f" ({status['waiting']})" if status.get("waiting") else ""),
           f"Runtime:      {status.get('runtimeStatus', '')}"
           + (f" ({status['runtimeReason']})" if status.get("runtimeReason") else ""),
           f"Builds:       {status.get('builds', 0)}"]
    if status.get("pendingChanges"):
        out.append(f"Pending:      {', '.join(status['pendingChanges'])}")
    if spec.get("links"):
        out.append(f"Links:        {' '.join(spec['links'])}")
    if status.get("error"):
        out += ["Error:", *[f"  {line}" for line in str(status["error"]).splitlines()]]
    alerts = related("alert")
    out.append("Alerts:" + ("" if alerts else " none"))
    out += [f"  {_first_line(a['status'].get('message'), 200)}" for a in alerts]
    pods = related("pod")
    if pods:
        out += ["Pods:", *[f"  {line}" for line in table("pod", pods).splitlines()]]
    forwards = related("portforward")
    if forwards:
        out += ["Port-forwards:",
                *[f"  {line}" for line in table("portforward", forwards).splitlines()]]
    builds = sorted(related("build"), key=lambda b: b["status"].get("startTime") or 0)[-5:]
    if builds:
        out += ["Last builds:", *[f"  {line}" for line in table("build", builds).splitlines()]]
        last_error = builds[-1]["status"].get("error")
        if last_error:
            out += ["Last build error:",
                    *[f"  {line}" for line in str(last_error).splitlines()]]
    applied = (status.get("details") or {}).get("appliedYaml")
    if applied:
        out += ["Applied YAML:", *[f"  {line}" for line in str(applied).splitlines()]]
    return "\n".join(out)


def format_line(line: dict[str, Any]) -> str:
    prefix = f"{line['resource']:>14} │ "
    if line.get("prefix"):
        prefix += f"[{line['prefix']}] "
    return prefix + str(line["text"])


# -- commands

def _logs(daemon: Daemon, names: list[str], follow: bool, out: TextIO) -> int:
    if len(names) > 1:
        raise ClientError("give at most one resource: `devloop logs [resource] [-f]`")
    params: dict[str, object] = {"resource": names[0]} if names else {}
    # The daemon answers a page at a time (newest first); every kept line is shown, as Tilt
    # does, so page back until none is left.
    result = daemon.get("/api/v1/logs?" + urllib.parse.urlencode({**params, "limit": LOG_PAGE}))
    pages = [result["lines"]]
    while result.get("more") and pages[-1]:
        result_page = daemon.get("/api/v1/logs?" + urllib.parse.urlencode(
            {**params, "limit": LOG_PAGE, "before": pages[-1][0]["seq"]}))
        pages.append(result_page["lines"])
        result = {**result, "more": result_page.get("more")}
    for resource, count in result["dropped"].items():
        if count:
            print(f"[... {count} older lines of {resource} dropped ...]", file=out)
    for page in reversed(pages):
        for line in page:
            print(format_line(line), file=out, flush=True)
    if follow:
        query = urllib.parse.urlencode({**params, "since": result["last"], "follow": 1})
        for line in daemon.events("/api/v1/logs?" + query):
            print(format_line(line), file=out, flush=True)
    return 0


def _get(daemon: Daemon, names: list[str], output: str, out: TextIO) -> int:
    if len(names) > 2:
        raise ClientError("usage: devloop get [kind] [name] [-o json|yaml|wide]")
    kind = names[0] if names else "resource"
    if len(names) == 2:
        obj = daemon.get(f"/api/v1/{_quote(kind)}/{_quote(names[1])}")
        if output in ("json", "yaml"):
            print(_dump(obj, output), file=out)
        else:
            print(table(obj["kind"], [obj], wide=output == "wide"), file=out)
        return 0
    listing = daemon.get(f"/api/v1/{_quote(kind)}")
    if output in ("json", "yaml"):
        print(_dump(listing, output), file=out)
    elif not listing["items"]:
        print(f"No {listing['kind']} objects.", file=sys.stderr)
    else:
        print(table(listing["kind"], listing["items"], wide=output == "wide"), file=out)
    return 0


def _act(daemon: Daemon, action: str, names: list[str], out: TextIO) -> int:
    if not names:
        raise ClientError(f"usage: devloop {action} <resource>...")
    daemon.post(f"/api/v1/actions/{action}", {"resources": names})
    done = {"trigger": "triggered", "enable": "enabled", "disable": "disabled"}[action]
    for name in names:
        print(f"{name} {done}", file=out)
    return 0


def run(options: argparse.Namespace, tiltfile_args: list[str], out: TextIO) -> int:
    daemon = Daemon.from_options(options)
    command, names = options.command, list(getattr(options, "names", []) or [])
    if command == "get":
        return _get(daemon, names, getattr(options, "output", "") or "", out)
    if command == "describe":
        if len(names) != 1:
            raise ClientError("usage: devloop describe <resource>")
        print(describe(daemon, names[0]), file=out)
        return 0
    if command == "logs":
        return _logs(daemon, names, bool(getattr(options, "follow", False)), out)
    if command in ("trigger", "enable", "disable"):
        return _act(daemon, command, names, out)
    if command == "args":
        args = names + list(tiltfile_args)
        daemon.post("/api/v1/actions/args", {"args": args})
        print("Tiltfile args set to: " + (" ".join(args) or "(none)")
              + "; the Tiltfile is being re-evaluated", file=out)
        return 0
    raise ClientError(f"unknown client command {command!r}")


def run_client(options: argparse.Namespace, tiltfile_args: list[str]) -> int:
    try:
        return run(options, tiltfile_args, sys.stdout)
    except ClientError as exc:
        print(f"devloop {options.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `devloop logs | head`
        return 0
