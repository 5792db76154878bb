"""Pod events: delivered per pod, once each, replayed to late subscribers (k8s/events.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from devloop.k8s.events import EventHub, record_of


class Silent:
    async def watch_pod_events(self, namespace: str) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield None


def event(uid: str, pod: str, reason: str, *, count: int = 1, kind: str = "Normal",
          when: str = "2030-01-01T00:00:00Z") -> dict[str, Any]:
    return {"metadata": {"uid": uid, "namespace": "ns"}, "type": kind, "reason": reason,
            "message": f"{reason}   happened", "count": count, "lastTimestamp": when,
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": "ns"}}


def test_events_reach_the_subscribers_of_their_pod_once_per_count():
    async def run() -> list[tuple[str, str, int, bool]]:
        hub = EventHub(Silent(), since=0)
        got: list[tuple[str, str, int, bool]] = []
        hub.deliver(event("1", "web-1", "Scheduled"))  # before anyone subscribed
        hub.subscribe("ns", "web-1", lambda r, fresh: got.append(
            (r.pod, r.reason, r.count, fresh)))
        hub.deliver(event("2", "web-1", "BackOff", kind="Warning"))
        hub.deliver(event("2", "web-1", "BackOff", kind="Warning"))  # same count: once
        hub.deliver(event("2", "web-1", "BackOff", kind="Warning", count=2))
        hub.deliver(event("3", "other", "Pulled"))
        await hub.close()
        return got

    assert asyncio.run(run()) == [("web-1", "Scheduled", 1, True), ("web-1", "BackOff", 1, True),
                                  ("web-1", "BackOff", 2, True)]


def test_a_later_subscriber_gets_known_events_as_not_fresh():
    async def run() -> list[bool]:
        hub = EventHub(Silent(), since=0)
        hub.subscribe("ns", "web-1", lambda r, fresh: None)
        hub.deliver(event("1", "web-1", "Pulled"))
        got: list[bool] = []
        hub.subscribe("ns", "web-1", lambda r, fresh: got.append(fresh))
        await hub.close()
        return got

    assert asyncio.run(run()) == [False]


def test_events_from_before_the_session_are_skipped():
    async def run() -> list[str]:
        hub = EventHub(Silent(), since=2_000_000_000)
        got: list[str] = []
        hub.subscribe("ns", "web-1", lambda r, fresh: got.append(r.reason))
        hub.deliver(event("1", "web-1", "Old", when="2001-01-01T00:00:00Z"))
        hub.deliver(event("2", "web-1", "New", when="2040-01-01T00:00:00Z"))
        await hub.close()
        return got

    assert asyncio.run(run()) == ["New"]


def test_a_record_says_what_happened_to_which_pod():
    found = record_of(event("9", "web-1", "Unhealthy", kind="Warning"))
    assert found is not None
    uid, record = found
    assert uid == "9" and record.warning
    assert record.line() == "[event: pod web-1] Unhealthy: Unhealthy happened"
    assert record_of({"involvedObject": {"kind": "Node", "name": "n"}}) is None
