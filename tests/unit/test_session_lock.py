"""One devloop session per namespace: the Lease is taken, renewed, refused to a second live
session with its holder named, taken over when stale, and released."""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devloop.k8s.errors import KubeError
from devloop.k8s.session_lock import (
    LEASE_NAME,
    SHARE_ENV,
    Holder,
    NamespaceBusy,
    SessionLock,
    delete_stale_lock,
    lock_state,
    micro_time,
)

BASE = "/apis/coordination.k8s.io/v1/namespaces/team/leases"


class FakeLeases:
    """Leases as the API server keeps them: create fails with 409 on an existing name,
    an update with a stale resourceVersion fails with 409, versions grow."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.version = 0

    def request(self, method: str, path: str, *, body: Any = None, content_type: str = "",
                what: str = "") -> Any:
        name = path.removeprefix(BASE).strip("/")
        if method == "GET":
            if name not in self.leases:
                raise KubeError("not found", status=404)
            return copy.deepcopy(self.leases[name])
        if method == "POST":
            name = body["metadata"]["name"]
            if name in self.leases:
                raise KubeError("exists", status=409)
            return self._store(name, body)
        if method == "PUT":
            live = self.leases.get(name)
            if live is None:
                raise KubeError("not found", status=404)
            if body["metadata"].get("resourceVersion") != live["metadata"]["resourceVersion"]:
                raise KubeError("conflict", status=409)
            return self._store(name, body)
        if method == "DELETE":
            if name not in self.leases:
                raise KubeError("not found", status=404)
            wanted = ((body or {}).get("preconditions") or {}).get("resourceVersion")
            if wanted and wanted != self.leases[name]["metadata"]["resourceVersion"]:
                raise KubeError("conflict", status=409)
            del self.leases[name]
            return {}
        raise AssertionError(method)

    def _store(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.leases[name] = stored
        return copy.deepcopy(stored)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2020, 1, 2, 8, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def holder(user: str, host: str = "", pid: int = 4242) -> Holder:
    """A session on another machine (`<user>-laptop`) unless `host` says otherwise."""
    return Holder(user=user, host=host or f"{user}-laptop", pid=pid, session=f"s-{user}",
                  tiltfile=f"/home/{user}/app/Tiltfile")


def lock(api: FakeLeases, who: Holder, clock: Clock, log: list[str] | None = None
         ) -> SessionLock:
    return SessionLock(api, "team", holder=who, log=(log if log is not None else []).append,
                       clock=clock)


def test_first_session_creates_the_lease_naming_itself() -> None:
    api, clock = FakeLeases(), Clock()
    first = lock(api, holder("alice"), clock)
    first.acquire_blocking()
    assert first.held
    lease = api.leases[LEASE_NAME]
    assert lease["spec"]["holderIdentity"] == "alice@alice-laptop pid 4242 session s-alice"
    assert lease["spec"]["leaseDurationSeconds"] == 30
    assert lease["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "devloop"}


def test_second_live_session_is_refused_with_the_holder_named() -> None:
    api, clock = FakeLeases(), Clock()
    lock(api, holder("alice"), clock).acquire_blocking()
    clock.now += timedelta(seconds=5)
    with pytest.raises(NamespaceBusy) as caught:
        lock(api, holder("bob", host="bobs-laptop"), clock).acquire_blocking()
    text = str(caught.value)
    assert "namespace 'team' is in use by another devloop session" in text
    assert "alice@alice-laptop (pid 4242, Tiltfile /home/alice/app/Tiltfile" in text
    assert "renewed 5s ago" in text
    assert "--namespace" in text
    assert api.leases[LEASE_NAME]["spec"]["holderIdentity"].startswith("alice@")


def test_share_variable_turns_the_refusal_into_a_warning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    api, clock, log = FakeLeases(), Clock(), []
    lock(api, holder("alice"), clock).acquire_blocking()
    monkeypatch.setenv(SHARE_ENV, "1")
    second = lock(api, holder("bob"), clock, log)
    second.acquire_blocking()
    assert not second.held
    assert log and log[0].startswith("WARNING: namespace 'team' is in use")


def test_lease_not_renewed_within_its_duration_is_taken_over() -> None:
    api, clock, log = FakeLeases(), Clock(), []
    lock(api, holder("alice"), clock).acquire_blocking()
    clock.now += timedelta(seconds=31)
    bob = lock(api, holder("bob"), clock, log)
    bob.acquire_blocking()
    assert bob.held
    assert api.leases[LEASE_NAME]["spec"]["holderIdentity"].startswith("bob@")
    assert api.leases[LEASE_NAME]["spec"]["leaseTransitions"] == 1
    assert "last renewed 31s ago" in log[0]


def test_session_of_this_machine_whose_process_exited_is_taken_over_at_once() -> None:
    api, clock, log = FakeLeases(), Clock(), []
    gone = 2 ** 22 + 12345  # above the default pid_max: no such process
    here = os.uname().nodename
    lock(api, holder("alice", host=here, pid=gone), clock).acquire_blocking()
    me = lock(api, holder("alice2", host=here, pid=os.getpid()), clock, log)
    me.acquire_blocking()
    assert me.held
    assert f"process {gone} on this machine has exited" in log[0]


def test_renewal_moves_renew_time_and_keeps_acquire_time() -> None:
    api, clock = FakeLeases(), Clock()
    first = lock(api, holder("alice"), clock)
    first.acquire_blocking()
    acquired = api.leases[LEASE_NAME]["spec"]["acquireTime"]
    clock.now += timedelta(seconds=10)
    first.renew_blocking()
    spec = api.leases[LEASE_NAME]["spec"]
    assert spec["renewTime"] == micro_time(clock.now)
    assert spec["acquireTime"] == acquired


def test_renewal_after_a_takeover_warns_and_lets_go() -> None:
    api, clock, log = FakeLeases(), Clock(), []
    alice = lock(api, holder("alice"), clock, log)
    alice.acquire_blocking()
    clock.now += timedelta(seconds=40)
    lock(api, holder("bob"), clock).acquire_blocking()
    alice.renew_blocking()
    assert not alice.held
    assert "was taken by bob@bob-laptop" in log[-1]
    assert api.leases[LEASE_NAME]["spec"]["holderIdentity"].startswith("bob@")


def test_release_deletes_only_our_own_lease() -> None:
    api, clock = FakeLeases(), Clock()
    alice = lock(api, holder("alice"), clock)
    alice.acquire_blocking()
    alice.release_blocking()
    assert LEASE_NAME not in api.leases
    lock(api, holder("bob"), clock).acquire_blocking()
    alice.release_blocking()
    assert api.leases[LEASE_NAME]["spec"]["holderIdentity"].startswith("bob@")


def test_down_removes_a_stale_lock_and_keeps_a_live_one() -> None:
    api, clock = FakeLeases(), Clock()
    lock(api, holder("alice"), Clock()).acquire_blocking()
    said: list[str] = []
    live, why = lock_state(api, "team", now=clock.now + timedelta(seconds=1), this_host="x")
    assert live is not None and why == ""
    # The Lease was last renewed in 2020 by the test clock; down reads the real one.
    delete_stale_lock(api, "team", said.append)
    assert LEASE_NAME not in api.leases
    assert said and said[0].startswith("Removed the devloop session lock of namespace team")


def test_session_api_acquire_start_release() -> None:
    import asyncio

    async def run() -> None:
        api, log = FakeLeases(), []
        session = SessionLock(api, "team", holder=holder("alice"), log=log.append)
        await session.acquire()
        session.start()
        assert LEASE_NAME in api.leases
        await session.release()
        assert LEASE_NAME not in api.leases

    asyncio.run(run())
