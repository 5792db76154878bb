"""The API under hostile or careless clients: 4xx for bad input, never a 500; no framing by
other sites; a private daemon directory."""

from __future__ import annotations

import asyncio
import json
import stat

from yarl import URL

from devloop.server.security import TOKEN_HEADER
from tests.unit.server_support import running_daemon


async def raw_request(port: int, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (a header aiohttp's client would refuse to encode)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_a_non_ascii_token_is_refused_not_an_error(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        body = b"{}"
        status, answer = await raw_request(daemon.server.port, (
            f"POST /api/v1/actions/trigger HTTP/1.1\r\nHost: 127.0.0.1:{daemon.server.port}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n").encode()
            + TOKEN_HEADER.encode() + ": t\xc3\xa9\xff\r\n\r\n".encode("latin-1") + body)
        assert status == 403 and b"token" in answer
        assert daemon.actions.calls == []


async def test_static_names_with_nul_or_too_long_are_404(tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<html><head></head></html>")
    async with running_daemon(tmp_path, web_dir=web) as daemon:
        for path in ("/static/%00", "/static/a%00b.js", "/static/" + "a" * 5000,
                     "/static/" + "/".join(["b" * 250] * 20)):
            async with daemon.http.get(URL(daemon.url + path, encoded=True)) as response:
                assert response.status == 404, path
                assert "error" in await response.json()


async def test_deeply_nested_json_is_400(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        nested = b"[" * 100000 + b"]" * 100000
        async with daemon.http.post(f"{daemon.url}/api/v1/actions/args", data=nested,
                                    headers=daemon.auth()) as response:
            assert response.status == 400
            assert "nested" in (await response.json())["error"]


async def test_args_that_are_not_text_are_400_and_change_nothing(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        for bad in ("\ud800", "a\x00b"):
            status, body = await daemon.post("/api/v1/actions/args", {"args": ["ok", bad]})
            assert status == 400 and "not valid Unicode text" in body["error"]
        assert daemon.actions.calls == []
        assert (await daemon.post("/api/v1/actions/args", {"args": ["é", "日本"]}))[0] == 200


async def test_no_page_or_answer_may_be_framed_by_another_site(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        paths = ["/", "/api/v1", "/api/v1/nothing/here", "/api/v1/logs"]
        for path in paths:
            async with daemon.http.get(daemon.url + path) as response:
                assert response.headers["X-Frame-Options"] == "DENY", path
                assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        async with daemon.http.get(daemon.url + "/api/v1/watch") as response:
            assert response.headers["X-Frame-Options"] == "DENY"
        async with daemon.http.get(daemon.url + "/", headers={"Host": "evil.example"}) as answer:
            assert answer.status == 421 and answer.headers["X-Frame-Options"] == "DENY"


async def test_an_existing_open_state_directory_is_made_private(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    async with running_daemon(tmp_path):
        assert stat.S_IMODE(state.stat().st_mode) == 0o700


async def test_malformed_query_values_are_400_not_500(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        for path in ("/api/v1/logs?limit=" + "9" * 5000, "/api/v1/logs?limit=1000000",
                     "/api/v1/logs?before=%F0%9F%92%A9", "/api/v1/pod?watch=1&resourceVersion=-",
                     "/api/v1/logs?since=-1", "/api/v1/logs?limit=", "/api/v1/logs?since=1_0",
                     "/api/v1/pod?resourceVersion=x"):
            async with daemon.http.get(URL(daemon.url + path, encoded=True)) as response:
                assert response.status == 400, path
                assert json.loads(await response.read())["error"]
