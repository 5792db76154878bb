"""next_updates: what starts now, and why the rest waits."""

from __future__ import annotations

import pytest

from devloop.engine.scheduler import ResourceView, RuntimeState, UpdateState, next_updates

OK, NONE, PENDING, RUNNING = (UpdateState.OK, UpdateState.NONE, UpdateState.PENDING,
                              UpdateState.IN_PROGRESS)


def view(name, deps=(), dirty=True, update=PENDING, runtime=RuntimeState.UNKNOWN,
         enabled=True, exclusive=False, k8s=False):
    return ResourceView(name, tuple(deps), dirty, update, runtime, enabled, exclusive, k8s)


def k8s(name, **kwargs):
    return view(name, k8s=True, **kwargs)


UNC = "uncategorized"
HELD = "waiting for the uncategorized objects to be applied"


@pytest.mark.parametrize("resources,max_parallel,start,waiting", [
    ([view("a"), view("b")], 3, ("a", "b"), {}),
    ([view("a"), view("b"), view("c")], 2, ("a", "b"),
     {"c": "waiting for a free slot (max_parallel_updates=2)"}),
    ([view("a"), view("b", deps=["a"])], 3, ("a",), {"b": "waiting for dependencies: a"}),
    ([view("a", dirty=False, update=OK, runtime=RuntimeState.OK), view("b", deps=["a"])], 3,
     ("b",), {}),
    ([view("a", dirty=False, update=OK, runtime=RuntimeState.PENDING), view("b", deps=["a"])],
     3, (), {"b": "waiting for dependencies: a"}),
    ([view("a", dirty=False, update=OK, runtime=RuntimeState.NOT_APPLICABLE),
      view("b", deps=["a"])], 3, ("b",), {}),
    ([view("a", update=RUNNING)], 3, (), {"a": "an update of this resource is already running"}),
    ([view("a", update=RUNNING, dirty=False), view("b")], 1, (),
     {"b": "waiting for a free slot (max_parallel_updates=1)"}),
    ([view("a", enabled=False), view("b", deps=["a"])], 3, ("b",), {}),
    ([view("b", deps=["missing"])], 3, ("b",), {}),
    ([view("a", dirty=False, update=NONE)], 3, (), {}),
    # local_resource without allow_parallel runs alone
    ([view("a", exclusive=True), view("b")], 3, ("a",),
     {"b": "waiting for a local resource that runs alone"}),
    ([view("a"), view("b", exclusive=True)], 3, ("a",),
     {"b": "runs alone (allow_parallel=False): waiting for others"}),
    ([view("a", update=RUNNING, dirty=False, exclusive=True), view("b")], 3, (),
     {"b": "waiting for a local resource that runs alone"}),
    # a Kubernetes resource deployed before goes ahead of a local resource that runs alone
    # (a save dirtied both: the live update or rebuild does not wait for the check)
    ([view("check", exclusive=True, update=OK), k8s("api", update=OK)], 3, ("api",),
     {"check": "runs alone (allow_parallel=False): waiting for others"}),
    ([view("check", exclusive=True, update=OK), k8s("api", update=UpdateState.ERROR),
      view("tool")], 3, ("api", "tool"),
     {"check": "runs alone (allow_parallel=False): waiting for others"}),
    ([view("check", exclusive=True, update=OK), k8s("api", update=RUNNING, dirty=False)], 3,
     (), {"check": "runs alone (allow_parallel=False): waiting for others"}),
    ([view("check", exclusive=True, update=OK), k8s("api", update=OK, dirty=False)], 3,
     ("check",), {}),
    # not on a first deploy: the check may make what the image is built from
    ([view("gen", exclusive=True), k8s("api")], 3, ("gen",),
     {"api": "waiting for a local resource that runs alone"}),
    # uncategorized goes first among the Kubernetes resources, which wait while it applies
    ([k8s("api"), k8s("web"), k8s(UNC)], 3, (UNC,), {"api": HELD, "web": HELD}),
    ([view("tool"), k8s("api"), k8s(UNC)], 3, ("tool", UNC), {"api": HELD}),
    ([k8s("api"), view("tool"), k8s(UNC)], 3, (UNC, "tool"), {"api": HELD}),
    ([k8s("api", dirty=False, update=OK), k8s(UNC, update=RUNNING, dirty=False),
      k8s("web")], 3, (), {"web": HELD}),
    ([k8s(UNC, update=RUNNING, dirty=False), view("tool")], 3, ("tool",), {}),
    # not held by an uncategorized that is done, disabled, waiting or out of slots
    ([k8s(UNC, dirty=False, update=OK, runtime=RuntimeState.NOT_APPLICABLE), k8s("api")], 3,
     ("api",), {}),
    ([k8s(UNC, enabled=False), k8s("api")], 3, ("api",), {}),
    ([view("db"), k8s(UNC, deps=["db"]), k8s("api")], 3, ("db", "api"),
     {UNC: "waiting for dependencies: db"}),
    ([view("tool"), k8s(UNC), k8s("api")], 1, ("tool",),
     {UNC: "waiting for a free slot (max_parallel_updates=1)",
      "api": "waiting for a free slot (max_parallel_updates=1)"}),
    # a local resource named uncategorized is an ordinary one
    ([view(UNC), k8s("api")], 3, (UNC, "api"), {}),
])
def test_next_updates(resources, max_parallel, start, waiting):
    decision = next_updates(resources, max_parallel)
    assert decision.start == start
    assert dict(decision.waiting) == waiting
