"""`GET /api/v1/logs`: filters applied on the server, paging, dropped counts, and following."""

from __future__ import annotations

from tests.unit.server_support import read_events, running_daemon


def fill(logs):
    logs.append("api", "Update #1 (initial update)", source="build")   # 1
    logs.append("api", "api v1 listening", source="runtime", prefix="api-1")  # 2
    logs.append("web", "GET / 200", source="runtime")                 # 3
    logs.append("(Tiltfile)", "Tiltfile loaded", source="tiltfile")    # 4
    logs.append("api", "ERROR: boom", source="runtime", prefix="api-1")  # 5


def texts(body):
    return [line["text"] for line in body["lines"]]


async def test_all_lines_in_order_with_every_field(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        fill(daemon.logs)
        status, body = await daemon.get("/api/v1/logs")
    assert status == 200 and body["last"] == 5 and body["dropped"] == {}
    assert [line["seq"] for line in body["lines"]] == [1, 2, 3, 4, 5]
    line = body["lines"][1]
    assert set(line) == {"seq", "time", "resource", "source", "prefix", "text"}
    assert (line["resource"], line["source"], line["prefix"]) == ("api", "runtime", "api-1")


async def test_filters_by_resource_text_source_and_seq(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        fill(daemon.logs)
        assert texts((await daemon.get("/api/v1/logs?resource=api"))[1]) == [
            "Update #1 (initial update)", "api v1 listening", "ERROR: boom"]
        assert texts((await daemon.get("/api/v1/logs?q=LISTENING"))[1]) == ["api v1 listening"]
        assert texts((await daemon.get("/api/v1/logs?source=build,tiltfile"))[1]) == [
            "Update #1 (initial update)", "Tiltfile loaded"]
        assert texts((await daemon.get("/api/v1/logs?since=3&resource=api"))[1]) == [
            "ERROR: boom"]
        body = (await daemon.get("/api/v1/logs?limit=2"))[1]
        assert texts(body) == ["Tiltfile loaded", "ERROR: boom"] and body["last"] == 5
        assert texts((await daemon.get("/api/v1/logs?before=4&limit=1"))[1]) == ["GET / 200"]
        assert (await daemon.get("/api/v1/logs?resource=nope"))[1] == {
            "lines": [], "dropped": {"nope": 0}, "last": 0, "more": False}


async def test_bad_parameters_are_400(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        status, body = await daemon.get("/api/v1/logs?source=stdout")
        assert status == 400 and "stdout" in body["error"]
        assert (await daemon.get("/api/v1/logs?since=x"))[0] == 400
        assert (await daemon.get("/api/v1/logs?limit=-1"))[0] == 400


async def test_dropped_lines_are_counted(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        daemon.logs.budget_bytes = 20
        for index in range(10):
            daemon.logs.append("api", f"line {index:04d}")
        body = (await daemon.get("/api/v1/logs"))[1]
    assert body["dropped"]["api"] == 10 - len(body["lines"]) > 0


async def test_follow_sends_backlog_after_since_then_matching_new_lines(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        fill(daemon.logs)
        async with daemon.http.get(f"{daemon.url}/api/v1/logs?follow=1&resource=api&since=2"
                                   ) as response:
            [backlog] = await read_events(response, 1)
            assert (backlog["id"], backlog["data"]["text"]) == (5, "ERROR: boom")
            daemon.logs.append("web", "not for us")
            daemon.logs.append("api", "api v2 listening", prefix="api-2")
            [live] = await read_events(response, 1)
        assert (live["id"], live["data"]["text"], live["data"]["prefix"]) == (
            7, "api v2 listening", "api-2")


async def test_follow_filters_text_and_source(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        async with daemon.http.get(f"{daemon.url}/api/v1/logs?follow=1&q=error&source=runtime"
                                   ) as response:
            daemon.logs.append("api", "ERROR in build", source="build")
            daemon.logs.append("api", "all good", source="runtime")
            daemon.logs.append("web", "error: 500", source="runtime")
            [event] = await read_events(response, 1)
        assert event["data"]["text"] == "error: 500"
