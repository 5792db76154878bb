"""The log store: lines kept compactly within the byte budget, and read back exactly as written
(order, fields, drops, case-insensitive search), checked against a plain list model."""

from __future__ import annotations

import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from devloop.engine.logs import LINE_OVERHEAD_BYTES, LogFilter, LogStore


def test_the_budget_is_what_the_kept_lines_really_cost():
    budget = 1 << 20
    tracemalloc.start()
    try:
        logs = LogStore(budget_bytes=budget)
        before = tracemalloc.get_traced_memory()[0]
        for index in range(100000):  # short lines: where per-line objects cost the most
            logs.append("api", f"GET /x {index:07d}", prefix="api-1")
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert logs.dropped("api") > 0
    assert used < 1.3 * budget, f"{used} bytes of memory for a {budget}-byte budget"


def test_non_ascii_lines_are_searched_case_insensitively_like_str_lower():
    logs = LogStore()
    logs.append("api", "École fermée")
    logs.append("api", "plain ascii KELVIN")
    logs.append("api", "ΣΊΣΥΦΟΣ")
    assert [line.text for line in logs.lines(query="école")] == ["École fermée"]
    assert [line.text for line in logs.lines(query="\u212aelvin")] == ["plain ascii KELVIN"]
    assert [line.text for line in logs.lines(query="σίσυφος")] == ["ΣΊΣΥΦΟΣ"]
    assert logs.lines(query="fermée\nplain") == []


def test_any_text_round_trips_even_a_lone_surrogate():
    logs = LogStore()
    logs.append("api", "bad \udcff byte", source="local", prefix="p")
    [line] = logs.lines()
    assert (line.text, line.source, line.prefix) == ("bad \udcff byte", "local", "p")


def test_tail_shows_the_newest_lines_and_the_drop_marker():
    logs = LogStore(budget_bytes=5 * (10 + LINE_OVERHEAD_BYTES))
    for index in range(12):
        logs.append("api", f"line {index:05d}")
    assert logs.tail("api", 2) == ["line 00010", "line 00011"]
    assert logs.tail("api", 10) == ["[... 7 older lines dropped ...]"] + [
        f"line {index:05d}" for index in range(7, 12)]


def test_recent_is_the_newest_lines_of_one_or_all_resources_in_order():
    logs = LogStore()
    for index in range(3000):  # several chunks per resource
        logs.append("api" if index % 3 else "web", f"line {index}")
    assert [line.text for line in logs.recent("web", 2)] == ["line 2994", "line 2997"]
    assert [line.text for line in logs.recent(None, 4)] == [
        f"line {index}" for index in range(2996, 3000)]
    assert [line.text for line in logs.recent(None, 10**6)] == [
        line.text for line in logs.lines()]
    assert logs.recent("nobody", 5) == [] and logs.recent("api", 0) == []


WORDS = st.sampled_from(["", "error", "Error", "ÉCHEC", "é", "x" * 70, "GET /", "ß", "İ"])
LINES = st.lists(st.tuples(st.sampled_from(["api", "web"]),
                           st.lists(WORDS, max_size=4).map(" ".join),
                           st.sampled_from(["runtime", "build"]),
                           st.sampled_from(["", "pod-1"])), max_size=300)


@settings(max_examples=60, deadline=None, database=None)
@given(lines=LINES, budget=st.integers(30, 3000), query=WORDS,
       since=st.integers(0, 40), before=st.none() | st.integers(0, 320))
def test_reads_match_a_plain_list_model(lines, budget, query, since, before):
    logs = LogStore(budget_bytes=budget)
    model: dict[str, list[tuple[int, str, str, str]]] = {}
    sizes: dict[str, int] = {}
    for seq, (resource, text, source, prefix) in enumerate(lines, start=1):
        logs.append(resource, text, source=source, prefix=prefix)
        kept = model.setdefault(resource, [])
        kept.append((seq, text, source, prefix))
        sizes[resource] = sizes.get(resource, 0) + len(text.encode()) + LINE_OVERHEAD_BYTES
        while sizes[resource] > budget and len(kept) > 1:
            sizes[resource] -= len(kept.pop(0)[1].encode()) + LINE_OVERHEAD_BYTES
    expected = sorted((seq, text) for kept in model.values() for seq, text, _, _ in kept
                      if seq > since and query.lower() in text.lower())
    assert [(line.seq, line.text) for line in logs.lines(since=since, query=query)] == expected
    for resource, kept in model.items():
        assert logs.dropped(resource) == sum(1 for r, *_ in lines if r == resource) - len(kept)
        wanted = LogFilter(query=query, sources=frozenset({"build"}), since=since, before=before)
        scanned = [(line.seq, line.text, line.source, line.prefix)
                   for batch in logs.scan(resource, wanted) for line in batch]
        assert scanned == [entry for entry in reversed(kept)
                           if entry[0] > since and (before is None or entry[0] < before)
                           and entry[2] == "build" and query.lower() in entry[1].lower()]


def test_the_session_budget_cuts_the_largest_logs_first_and_keeps_quiet_ones():
    line = "x" * 76  # 100 bytes with its array entries
    logs = LogStore(budget_bytes=1 << 20, total_budget_bytes=10_000)
    for index in range(10):
        logs.append("quiet", f"{index:02d}" + line[2:])
    for index in range(500):
        logs.append("chatty", f"{index:03d}" + line[3:])
        logs.append("chattier", f"{index:03d}" + line[3:])
    kept = {name: len(logs.lines(name)) for name in ("quiet", "chatty", "chattier")}
    assert kept["quiet"] == 10 and logs.dropped("quiet") == 0
    assert kept["chatty"] + kept["chattier"] + kept["quiet"] <= 100
    assert abs(kept["chatty"] - kept["chattier"]) <= 2
    assert logs.lines("chatty")[-1].text.startswith("499")
    assert logs.dropped("chatty") == 500 - kept["chatty"]


def test_the_session_budget_bounds_many_resources_together():
    logs = LogStore(total_budget_bytes=200_000)
    for index in range(20_000):
        logs.append(f"svc-{index % 37}", f"line {index} " + "y" * 80)
    kept = sum(len(logs.lines(name)) for name in logs.resources())
    assert 1000 < kept * (90 + LINE_OVERHEAD_BYTES) <= 200_000
    assert all(logs.lines(name) for name in logs.resources())
