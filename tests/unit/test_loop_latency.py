"""What the inner loops wait for: the port-forward probe's quiet wait, the stability clock
of `ci` against a probe, the watcher's default debounce, and a live update not queued
behind a check that runs alone."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from devloop.daemon.preload import CLUSTER_MODULE, names_kubernetes, preload_cluster
from devloop.engine import k8s_monitor
from devloop.engine.k8s_runner import K8sRunner
from devloop.engine.runner import RunnerHooks
from devloop.engine.scheduler import ResourceView, RuntimeState, UpdateState, next_updates
from devloop.engine.watcher import DEFAULT_DEBOUNCE_SECONDS, FileWatcher
from devloop.k8s import portforward
from devloop.model import plan as p
from tests.unit.test_k8s_runner_runtime import POD, Cluster, running

PROBE_DELAY = 0.5


def test_a_probe_waits_a_few_tunnel_openings_for_a_refusal_within_bounds() -> None:
    assert portforward.probe_quiet_seconds(0.0) == portforward.PROBE_MIN_SECONDS
    assert portforward.probe_quiet_seconds(0.015) == portforward.PROBE_MIN_SECONDS
    assert portforward.probe_quiet_seconds(0.1) == 0.1 * portforward.PROBE_OPENS
    # a slow API server or kubelet: never longer than the old quiet second
    assert portforward.probe_quiet_seconds(2.0) == portforward.PROBE_SECONDS
    assert portforward.PROBE_MIN_SECONDS < portforward.PROBE_SECONDS


class SlowProbe:
    """A forward whose probe takes PROBE_DELAY (a server still starting, a slow tunnel)."""

    def __init__(self) -> None:
        self.probes = 0

    async def probe(self) -> str:
        self.probes += 1
        await asyncio.sleep(PROBE_DELAY)
        return ""

    def retarget(self, namespace: str, pod: str) -> None:
        pass

    async def stop(self) -> None:
        pass


class ForwardingCluster(Cluster):
    def __init__(self) -> None:
        super().__init__()
        self.handle = SlowProbe()

    async def forward(self, *args: Any) -> Any:
        return self.handle


def test_the_stability_clock_starts_when_the_pod_is_seen_ready_not_after_the_probe() -> None:
    async def run() -> None:
        cluster = ForwardingCluster()
        hooks = RunnerHooks(log=lambda *args: None, changed=lambda: None)
        resource = p.Resource(name="web", type=p.ResourceType.K8S,
                              port_forwards=(p.PortForward(18000, 8000),))
        plan = p.Plan(tiltfile="/p/Tiltfile", resources=(resource,))
        runner = K8sRunner(resource, plan=plan, cluster=cluster,
                           hooks=hooks)
        runner.monitor.applied = [dict(POD)]
        cluster.live = running()
        seen_ready = time.monotonic()
        await runner.monitor.observe()
        assert cluster.handle.probes == 1  # the observation waited for the probe
        report = runner.runtime()
        assert report.state == RuntimeState.OK
        assert report.stable_at is not None
        # counted from before the probe, not from its end
        assert report.stable_at < seen_ready + k8s_monitor.STABLE_SECONDS + PROBE_DELAY / 2
        assert report.stable_at >= seen_ready + k8s_monitor.STABLE_SECONDS
        await runner.stop()
        await cluster.events.close()

    asyncio.run(run())


def test_the_default_debounce_folds_an_editor_save_into_one_change_set(tmp_path: Path) -> None:
    assert DEFAULT_DEBOUNCE_SECONDS <= 0.025  # at most this much of every save's latency

    async def run() -> list[frozenset[str]]:
        got: list[frozenset[str]] = []
        target = tmp_path / "app.py"
        target.write_text("old\n")
        watcher = FileWatcher(got.append)
        watcher.start([str(tmp_path)])
        try:
            await asyncio.sleep(0.2)
            # An editor's save: write a temporary file, rename it over the original, chmod.
            temporary = tmp_path / ".app.py.tmp"
            temporary.write_text("new\n")
            os.replace(temporary, target)
            os.chmod(target, 0o644)
            await asyncio.sleep(0.5)
        finally:
            watcher.stop()
        return got

    got = asyncio.run(run())
    assert len(got) == 1, got
    assert str(tmp_path / "app.py") in got[0]


def _view(name: str, *, k8s: bool, exclusive: bool = False) -> ResourceView:
    return ResourceView(name, (), dirty=True, update=UpdateState.OK,
                        runtime=RuntimeState.OK if k8s else RuntimeState.NOT_APPLICABLE,
                        exclusive=exclusive, k8s=k8s)


def test_a_save_updates_the_running_pods_before_the_check_that_runs_alone() -> None:
    # The shop's Tiltfile: the check (declared as a local resource, listed first) and the
    # api both depend on api/app.py.
    check, api = _view("check", k8s=False, exclusive=True), _view("api", k8s=True)
    decision = next_updates([check, api], 3)
    assert decision.start == ("api",)
    assert "runs alone" in decision.waiting["check"]
    # once the api's update is done, the check runs
    done = ResourceView("api", (), dirty=False, update=UpdateState.OK,
                        runtime=RuntimeState.OK, k8s=True)
    assert next_updates([check, done], 3).start == ("check",)


def test_the_cluster_modules_load_during_the_evaluation_only_for_a_kubernetes_tiltfile(
        tmp_path: Path) -> None:
    kube = tmp_path / "Tiltfile"
    kube.write_text('load("./helpers.star", "svc")\nk8s_yaml(["k8s/api.yaml"])\n')
    local = tmp_path / "Tiltfile.local"
    local.write_text('local_resource("check", cmd="make test", deps=["src"])\n')
    assert names_kubernetes(str(kube))
    assert names_kubernetes(str(tmp_path / "none")) is False  # a missing file: no guess
    assert not names_kubernetes(str(local))

    async def run() -> None:
        assert preload_cluster(str(local)) is None
        future = preload_cluster(str(kube))
        assert future is not None
        module = await future
        assert module.__name__ == CLUSTER_MODULE and hasattr(module, "Cluster")

    asyncio.run(run())
