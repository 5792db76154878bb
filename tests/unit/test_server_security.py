"""The token, Host and Origin checks: mutations need the token, foreign origins and hosts
(DNS rebinding) are refused."""

from __future__ import annotations

from devloop.server.security import Guard
from tests.unit.server_support import running_daemon


async def test_mutation_without_token_is_refused_and_does_nothing(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        async with daemon.http.post(f"{daemon.url}/api/v1/actions/trigger",
                                    json={"resource": "api"}) as response:
            assert response.status == 403
            assert "X-Devloop-Token" in (await response.json())["error"]
        async with daemon.http.post(f"{daemon.url}/api/v1/actions/trigger",
                                    json={"resource": "api"},
                                    headers={"X-Devloop-Token": "guess"}) as response:
            assert response.status == 403
        assert daemon.actions.calls == []


async def test_mutation_with_token_from_own_origin_is_accepted(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        headers = {**daemon.auth(), "Origin": daemon.url}
        async with daemon.http.post(f"{daemon.url}/api/v1/actions/trigger",
                                    json={"resource": "api"}, headers=headers) as response:
            assert response.status == 200
        assert daemon.actions.calls == [("trigger", "api")]


async def test_foreign_origin_is_refused_even_with_the_token(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        for origin in ("http://evil.example", "null", f"https://127.0.0.1:{daemon.server.port}"):
            headers = {**daemon.auth(), "Origin": origin}
            async with daemon.http.post(f"{daemon.url}/api/v1/actions/trigger",
                                        json={"resource": "api"}, headers=headers) as response:
                assert response.status == 403, origin
            async with daemon.http.get(f"{daemon.url}/api/v1/resource",
                                       headers={"Origin": origin}) as response:
                assert response.status == 403, origin
        assert daemon.actions.calls == []


async def test_foreign_host_is_refused_for_reads_and_writes(tmp_path):
    """A rebinding attack: evil.example resolves to 127.0.0.1, the browser sends its name."""
    async with running_daemon(tmp_path) as daemon:
        port = daemon.server.port
        for path in ("/", "/api/v1/resource"):
            async with daemon.http.get(f"{daemon.url}{path}",
                                       headers={"Host": f"evil.example:{port}"}) as response:
                assert response.status == 421
                assert daemon.server.token not in await response.text()
        async with daemon.http.post(f"{daemon.url}/api/v1/actions/trigger",
                                    json={"resource": "api"},
                                    headers={**daemon.auth(), "Host": f"evil.example:{port}"},
                                    ) as response:
            assert response.status == 421
        async with daemon.http.get(f"{daemon.url}/api/v1",
                                   headers={"Host": f"localhost:{port}"}) as response:
            assert response.status == 200
        assert daemon.actions.calls == []


def test_host_rules_of_a_loopback_daemon():
    guard = Guard(bind_host="127.0.0.1", port=10350)
    assert guard.host_allowed("127.0.0.1:10350")
    assert guard.host_allowed("LOCALHOST:10350")
    assert guard.host_allowed("[::1]:10350")
    assert not guard.host_allowed("127.0.0.1:10351")
    assert not guard.host_allowed("127.0.0.1")
    assert not guard.host_allowed("attacker.example:10350")
    assert not guard.host_allowed(None)
    assert guard.origin_allowed(None)
    assert guard.origin_allowed("http://localhost:10350")
    assert not guard.origin_allowed("http://localhost:10350.evil.example")


def test_a_daemon_on_every_interface_accepts_its_addresses_not_names():
    guard = Guard(bind_host="0.0.0.0", port=10350)
    assert guard.host_allowed("192.168.1.20:10350")
    assert guard.host_allowed("[fe80::1]:10350")
    assert not guard.host_allowed("devbox.example:10350")
    named = Guard(bind_host="devbox.lan", port=10350)
    assert named.host_allowed("devbox.lan:10350")
    assert not named.host_allowed("192.168.1.20:10350")


def test_each_guard_has_its_own_token():
    assert Guard(bind_host="127.0.0.1").token != Guard(bind_host="127.0.0.1").token
    guard = Guard(bind_host="127.0.0.1")
    assert guard.token_valid(guard.token)
    assert not guard.token_valid(None) and not guard.token_valid("")
