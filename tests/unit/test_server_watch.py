"""Watch streams: server-sent events of store changes, resumable from a version, with
deletions replayed from tombstones."""

from __future__ import annotations

import asyncio

from devloop.engine.store import Store
from devloop.server.watch import ChangeFeed
from tests.unit.server_support import read_events, running_daemon


def summary(events):
    return [(e["data"]["type"], e["data"]["object"]["kind"],
             e["data"]["object"]["metadata"]["name"], e["id"]) for e in events]


async def test_watch_sends_current_objects_then_live_changes(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        store = daemon.store
        store.put("resource", "api", spec={"type": "k8s"}, status={"updateStatus": "pending"})
        store.put("pod", "api-1", spec={"resource": "api"}, status={})
        async with daemon.http.get(f"{daemon.url}/api/v1/resource?watch=1") as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            [first] = await read_events(response, 1)
            assert summary([first]) == [("ADDED", "resource", "api", 1)]
            store.update_status("resource", "api", updateStatus="ok")
            store.put("pod", "api-2", spec={}, status={})  # another kind: not sent
            store.delete("resource", "api")
            changes = await read_events(response, 2)
        assert summary(changes) == [("MODIFIED", "resource", "api", 3),
                                    ("DELETED", "resource", "api", 5)]
        assert changes[0]["data"]["object"]["status"] == {"updateStatus": "ok"}
        assert changes[1]["data"]["object"]["metadata"]["resourceVersion"] == "5"


async def test_resume_replays_changes_and_deletions_after_the_version(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        store = daemon.store
        store.put("pod", "old", spec={}, status={})              # 1
        store.put("pod", "kept", spec={}, status={})             # 2
        seen = store.version
        store.put("pod", "new", spec={}, status={})              # 3
        store.delete("pod", "old")                               # 4
        store.put("pod", "back", spec={}, status={})             # 5
        store.delete("pod", "back")                              # 6
        store.put("pod", "back", spec={}, status={"again": 1})   # 7: exists again
        async with daemon.http.get(f"{daemon.url}/api/v1/pod?watch=1&resourceVersion={seen}"
                                   ) as response:
            replay = await read_events(response, 3)
        assert summary(replay) == [("MODIFIED", "pod", "new", 3), ("DELETED", "pod", "old", 4),
                                   ("MODIFIED", "pod", "back", 7)]
        # The browser's EventSource resumes with Last-Event-ID by itself.
        async with daemon.http.get(f"{daemon.url}/api/v1/pod?watch=1",
                                   headers={"Last-Event-ID": "4"}) as response:
            assert summary(await read_events(response, 1)) == [("MODIFIED", "pod", "back", 7)]
        # An EventSource reconnecting sends its first URL again (the version the page
        # started from) and how far it got since: it resumes from the newer.
        async with daemon.http.get(f"{daemon.url}/api/v1/pod?watch=1&resourceVersion={seen}",
                                   headers={"Last-Event-ID": "4"}) as response:
            assert summary(await read_events(response, 1)) == [("MODIFIED", "pod", "back", 7)]
        async with daemon.http.get(f"{daemon.url}/api/v1/pod?watch=1&resourceVersion=6",
                                   headers={"Last-Event-ID": "4"}) as response:
            assert summary(await read_events(response, 1)) == [("MODIFIED", "pod", "back", 7)]


async def test_watch_every_kind(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        daemon.store.put("resource", "api", spec={}, status={})
        async with daemon.http.get(f"{daemon.url}/api/v1/watch?resourceVersion=1") as response:
            daemon.store.put("pod", "api-1", spec={}, status={})
            daemon.store.put("alert", "api-update", spec={}, status={"message": "boom"})
            events = await read_events(response, 2)
        assert summary(events) == [("ADDED", "pod", "api-1", 2),
                                   ("ADDED", "alert", "api-update", 3)]
        async with daemon.http.get(f"{daemon.url}/api/v1/all?watch=1") as response:
            assert len(await read_events(response, 3)) == 3


async def test_idle_stream_gets_keepalive_comments(tmp_path):
    async with running_daemon(tmp_path, keepalive_seconds=0.01) as daemon:
        async with daemon.http.get(f"{daemon.url}/api/v1/pod?watch=1") as response:
            assert await read_events(response, 1) == [{"comment": "keep-alive"}]
            daemon.store.put("pod", "p", spec={}, status={})
            events = [e for e in await read_events(response, 3) if "comment" not in e]
            while not events:
                events = [e for e in await read_events(response, 1) if "comment" not in e]
        assert summary(events[:1]) == [("ADDED", "pod", "p", 1)]


async def test_bad_version_is_400(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        status, body = await daemon.get("/api/v1/pod?watch=1&resourceVersion=abc")
        assert status == 400 and "abc" in body["error"]


async def test_stopping_the_server_ends_open_streams(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        response = await daemon.http.get(f"{daemon.url}/api/v1/watch")
        follow = await daemon.http.get(f"{daemon.url}/api/v1/logs?follow=1")
        await daemon.server.stop()
        assert await read_events(response, 1) == []  # the stream ended
        assert await read_events(follow, 1) == []
        response.release()
        follow.release()


async def test_feed_numbers_deletions_and_keeps_one_tombstone_per_name():
    store = Store()
    feed = ChangeFeed(store)
    store.put("pod", "a", spec={}, status={})        # 1
    store.delete("pod", "a")                         # 2
    store.put("pod", "a", spec={}, status={})        # 3
    store.delete("pod", "a")                         # 4
    store.put("pod", "b", spec={}, status={})        # 5
    replay, outbox = feed.open("pod", 0, limit_bytes=1 << 20)
    assert [(e.type, e.object["metadata"]["name"], e.version) for e in replay] == [
        ("DELETED", "a", 4), ("MODIFIED", "b", 5)]
    store.delete("pod", "b")
    feed.catch_up()
    [event] = outbox.take()
    assert (event.type, event.version) == ("DELETED", 6)
    await feed.stop()


async def test_slow_watcher_never_blocks_the_store_and_is_cut_off_past_its_buffer():
    store = Store()
    feed = ChangeFeed(store)
    feed.start()
    _, outbox = feed.open("pod", None, limit_bytes=64 * 1024)
    for index in range(5000):
        store.put("pod", f"p{index}", spec={}, status={})
    await asyncio.sleep(0)
    feed.catch_up()
    assert outbox.overflowed and outbox.take() == []
    _, outbox = feed.open("pod", None, limit_bytes=64 * 1024)
    store.put("pod", "one-more", spec={}, status={})
    feed.catch_up()
    assert [event.object["metadata"]["name"] for event in outbox.take()] == ["one-more"]
    await feed.stop()


async def test_watch_of_another_kind_queues_nothing():
    store = Store()
    feed = ChangeFeed(store)
    _, outbox = feed.open("alert", None, limit_bytes=1 << 20)
    for index in range(100):
        store.put("pod", f"p{index}", spec={}, status={})
    feed.catch_up()
    assert outbox.waiting_bytes == 0 and not outbox.ready.is_set()
    await feed.stop()
