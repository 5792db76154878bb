"""Fuzzing the HTTP API: random paths, query values, headers and bodies never get a 500, never
hang, and always get JSON from /api.

The real server runs on a loop in a thread; each case is one real HTTP exchange over a fresh
connection (http.client sends paths and headers as given). Bounded: FUZZ_CASES generated cases per
test plus the replayed crashers, then schemathesis' SCHEMA_CASES per operation of the OpenAPI
description (1,660 requests in all; 25-35 s for the file on a 2-core machine, longer when it
is busy), with shrinking on a failure; no example database, so every run is a fresh search.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.server.app import RunningServer, ServerSettings, start_server
from devloop.server.openapi import describe
from devloop.server.security import TOKEN_HEADER
from tests.unit.server_support import FakeActions

FUZZ_CASES = 500
TIMEOUT_SECONDS = 10  # a hang shows as a failed case, not a stuck suite


@dataclass
class Served:
    port: int
    token: str
    actions: FakeActions


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, RunningServer] = {}
    state = tmp_path_factory.mktemp("fuzz")
    web = state / "web"
    (web / "js").mkdir(parents=True)
    (web / "index.html").write_text("<html><head></head><body></body></html>")
    (web / "js" / "app.js").write_text("1")
    actions = FakeActions()

    async def start() -> None:
        store, logs = Store(), LogStore()
        store.put("resource", "api", spec={"type": "k8s"}, status={"updateStatus": "ok"})
        store.put("pod", "api-1", spec={"resource": "api"}, status={})
        for index in range(50):
            logs.append("api" if index % 2 else "web", f"line {index} é ERROR",
                        source="runtime" if index % 3 else "build")
        holder["server"] = await start_server(
            store=store, logs=logs, actions=actions, port=0, web_dir=web,
            state_dir=Path(state) / "state",
            settings=ServerSettings(keepalive_seconds=0.2, liveness_seconds=0.1))
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(TIMEOUT_SECONDS)
    server = holder["server"]
    try:
        yield Served(server.port, server.token, actions)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(TIMEOUT_SECONDS)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT_SECONDS)
        loop.close()


def exchange(served: Served, method: str, path: str, *, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """One request; a stream's body is not read (its status and headers are the answer)."""
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=TIMEOUT_SECONDS)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", f"127.0.0.1:{served.port}")
        for name, value in (headers or {}).items():
            # Any bytes but the line breaks that would end the header.
            raw = value.encode("utf-8", "surrogatepass")
            connection.putheader(name, raw.replace(b"\r", b"").replace(b"\n", b""))
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        kind = response.getheader("Content-Type", "")
        data = b"" if kind.startswith("text/event-stream") else response.read()
        return response.status, kind, data
    finally:
        connection.close()


def check(status: int, kind: str, data: bytes, path: str) -> None:
    assert status < 500, (status, path, data[:300])
    if path.startswith("/api") and kind.startswith("application/json"):
        assert isinstance(json.loads(data), dict)
    if path.startswith("/api") and status >= 400:
        if kind.startswith("application/json"):
            assert "error" in json.loads(data), (status, path, data[:300])
        else:  # refused by aiohttp's HTTP parser before reaching the app: not valid HTTP
            assert status == 400, (status, path, data[:300])


TEXT = st.text(max_size=40) | st.sampled_from(["", "0", "-1", "1", "99999999999999999999",
                                                 "api", "web", "%00", "\x00", "\ud800", "é",
                                                 "../..", "runtime,build", "true"])
SEGMENT = st.sampled_from(["api", "v1", "logs", "watch", "all", "resource", "resources",
                           "pod", "pods", "static", "js", "app.js", "actions", "trigger",
                           "..", ".", "%2e%2e", "%00", "a" * 300, "b" * 5000, "",
                           "index.html"]) | TEXT
# Where the server's routes start: the fuzzer spends its cases inside them.
ROUTES = ["/", "/api", "/api/v1/", "/api/v1/logs", "/api/v1/watch", "/api/v1/resource/",
          "/api/v1/pods/", "/static/", "/api/v1/actions/"]
QUERY_KEYS = st.sampled_from(["resource", "q", "source", "since", "before", "limit",
                              "follow", "watch", "resourceVersion", "x"])


def encode(text: str) -> str:
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def paths(draw: st.DrawFn) -> str:
    route = draw(st.sampled_from(ROUTES))
    segments = draw(st.lists(SEGMENT, max_size=3))
    raw = draw(st.booleans())  # some segments go out unencoded, e.g. a literal %00
    path = route + "/".join(segment if raw and segment.isascii() and segment.isprintable()
                            and " " not in segment else encode(segment) for segment in segments)
    params = draw(st.lists(st.tuples(QUERY_KEYS, TEXT), max_size=4))
    if params:
        path += "?" + "&".join(f"{key}={encode(value)}" for key, value in params)
    return path


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["resource", "resources", "args", "x"]) | TEXT, inner, max_size=4),
    max_leaves=12)


FUZZ = settings(max_examples=FUZZ_CASES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


# Crashes found by fuzzing (each was a 500) are replayed first, every run.
@FUZZ
@given(path=paths(), last_event_id=st.none() | TEXT)
@example(path="/static/%00", last_event_id=None)
@example(path="/static/" + "a" * 5000, last_event_id=None)
@example(path="/api/v1/logs?follow=1", last_event_id="9" * 5000)
def test_reads_never_fail_on_the_server(served: Served, path: str,
                                        last_event_id: str | None) -> None:
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    status, kind, data = exchange(served, "GET", path, headers=headers)
    check(status, kind, data, path)


@FUZZ
@given(action=st.sampled_from(["trigger", "enable", "disable", "args", "nope"]),
       body=JSON.map(lambda value: json.dumps(value).encode()) | st.binary(max_size=200),
       token=st.sampled_from(["right", "none"]) | TEXT)
@example(action="trigger", body=b"{}", token="\x80")
@example(action="args", body=b"[" * 100000 + b"]" * 100000, token="right")
@example(action="args", body=b'{"args": ["\\ud800"]}', token="right")
def test_actions_never_fail_on_the_server(served: Served, action: str, body: bytes,
                                          token: str) -> None:
    headers = {"Content-Type": "application/json"}
    if token != "none":
        headers[TOKEN_HEADER] = served.token if token == "right" else token
    path = f"/api/v1/actions/{action}"
    status, kind, data = exchange(served, "POST", path, body=body, headers=headers)
    check(status, kind, data, path)
    for name, value in served.actions.calls:
        assert isinstance(value, (str, list)), (name, value)
    served.actions.calls.clear()


# -- the same server against its own OpenAPI description (schemathesis)

API = schemathesis.openapi.from_dict(describe())
SCHEMA_CASES = 60  # per operation; 13 operations


def test_the_served_description_is_the_one_checked(served: Served) -> None:
    status, kind, data = exchange(served, "GET", "/api/v1/openapi.json")
    assert status == 200 and json.loads(data) == json.loads(json.dumps(describe()))


@API.parametrize()
@settings(max_examples=SCHEMA_CASES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_openapi_description(case, served: Served) -> None:
    # A stream answers for as long as the client stays: its head is checked by the read
    # fuzzer above; here only answers with an end.
    if case.query:
        for name in ("watch", "follow"):
            case.query.pop(name, None)
    kind = (case.path_parameters or {}).get("kind", "")
    if case.path == "/api/v1/watch" or kind in ("watch", "logs", "openapi.json", "actions",
                                                   "kinds"):
        return  # a stream, or another operation's path
    response = case.call(base_url=f"http://127.0.0.1:{served.port}",
                         headers={TOKEN_HEADER: served.token}, timeout=TIMEOUT_SECONDS)
    case.validate_response(response)
    served.actions.calls.clear()
