"""Benchmark: applying a `k8s_yaml` of 100 objects.

How: 100 objects of the kinds a project's shared YAML holds (30 ConfigMaps, 20 Secrets, 20
Services, 10 ServiceAccounts, 10 Roles, 10 RoleBindings), on the test environment's API
server, each round in a fresh namespace. Figures:
* in process, `KubeClient.server_side_apply` of each object one after another (how devloop
  applied before) against `k8s/apply.py`'s `apply_all` (kind order, 8 at once, what devloop
  does now), alternating, R rounds each (default 3), medians; "create" is the first apply
  into an empty namespace, "again" the same objects applied once more (unchanged);
* end to end: `devloop ci` on a Tiltfile of `k8s_yaml("objects.yaml")` (the objects form its
  uncategorized resource); the apply time is from the "Applying 100 objects" line to the
  100th "applied" line of the resource in ci's streamed output (read every 2 ms).

    python bench/scale_apply.py [ROUNDS]
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from scale_projects import cluster_env, figure, wait_for

from devloop.k8s.apply import apply_all
from devloop.k8s.client import KubeClient

GOAL_SECONDS = 2.0
OBJECTS = 100


def objects(namespace: str) -> list[dict[str, Any]]:
    def meta(name: str) -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": {"bench": "apply"}}

    made: list[dict[str, Any]] = []
    for index in range(30):
        made.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(f"config-{index}"),
                     "data": {"settings.yaml": f"level: {index}\nname: config-{index}\n"}})
    for index in range(20):
        made.append({"apiVersion": "v1", "kind": "Secret", "metadata": meta(f"secret-{index}"),
                     "stringData": {"password": f"not-a-secret-{index}"}})
    for index in range(20):
        made.append({"apiVersion": "v1", "kind": "Service", "metadata": meta(f"svc-{index}"),
                     "spec": {"selector": {"app": f"app-{index}"},
                              "ports": [{"port": 80, "targetPort": 8080}]}})
    for index in range(10):
        made.append({"apiVersion": "v1", "kind": "ServiceAccount",
                     "metadata": meta(f"account-{index}")})
        made.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                     "metadata": meta(f"role-{index}"), "rules": [{
                         "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]})
        made.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                     "metadata": meta(f"binding-{index}"),
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                 "name": f"role-{index}"},
                     "subjects": [{"kind": "ServiceAccount", "name": f"account-{index}",
                                   "namespace": namespace}]})
    assert len(made) == OBJECTS
    return made


async def in_process(kubeconfig: Path, rounds: int) -> dict[str, list[float]]:
    kube = await KubeClient.create(str(kubeconfig))
    samples: dict[str, list[float]] = {key: [] for key in (
        "sequential create", "sequential again", "concurrent create", "concurrent again")}
    namespaces: list[str] = []
    try:
        # Warm the client's discovery cache and connections, as a session's first apply has.
        warm = f"bench-apply-{uuid.uuid4().hex[:6]}"
        namespaces.append(warm)
        await kube.server_side_apply({"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": warm}})
        await apply_all(kube.server_side_apply, objects(warm))
        for _ in range(rounds):
            for mode in ("sequential", "concurrent"):
                namespace = f"bench-apply-{uuid.uuid4().hex[:6]}"
                namespaces.append(namespace)
                await kube.server_side_apply({"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": namespace}})
                batch = objects(namespace)
                for phase in ("create", "again"):
                    started = time.perf_counter()
                    if mode == "sequential":
                        for manifest in batch:
                            await kube.server_side_apply(manifest)
                    else:
                        await apply_all(kube.server_side_apply, batch)
                    samples[f"{mode} {phase}"].append(time.perf_counter() - started)
    finally:
        for namespace in namespaces:
            await kube.delete({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": namespace}})
        kube.close()
    return samples


def end_to_end(kubeconfig: Path, namespace: str) -> tuple[float, float]:
    """(apply seconds, ci wall seconds) of `devloop ci` on the 100 objects."""
    with tempfile.TemporaryDirectory(prefix="devloop-scale-apply-") as tmp:
        project = Path(tmp)
        batch = [{**obj, "metadata": {k: v for k, v in obj["metadata"].items()
                                      if k != "namespace"}} for obj in objects(namespace)]
        for obj in batch:
            for subject in obj.get("subjects", []):
                subject["namespace"] = namespace
        (project / "objects.yaml").write_text(yaml.safe_dump_all(batch))
        (project / "Tiltfile").write_text('k8s_yaml("objects.yaml")\n')
        log_path = project / "ci.log"
        started = time.perf_counter()
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "devloop", "ci", "--port", "0", "--timeout", "5m"],
                cwd=project, stdout=log, stderr=subprocess.STDOUT,
                env={**__import__("os").environ, "KUBECONFIG": str(kubeconfig),
                     "PYTHONUNBUFFERED": "1"})

        def text() -> str:
            return log_path.read_text(errors="replace")

        wait_for(lambda: f"Applying {OBJECTS} objects" in text(), 300, poll=0.002)
        begun = time.perf_counter()
        wait_for(lambda: text().count(" applied") >= OBJECTS, 300, poll=0.002)
        applied = time.perf_counter() - begun
        code = process.wait(timeout=600)
        wall = time.perf_counter() - started
        if code != 0:
            print(text()[-3000:])
            raise SystemExit(f"devloop ci failed ({code})")
    return applied, wall


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with cluster_env("bench-apply") as bench:
        samples = asyncio.run(in_process(bench.kubeconfig, rounds))
        applied, wall = end_to_end(bench.kubeconfig, bench.namespace)
    print(f"k8s_yaml of {OBJECTS} objects (ConfigMaps, Secrets, Services, ServiceAccounts, "
          f"Roles, RoleBindings) on the test cluster; in process: {rounds} alternating "
          "rounds, medians")
    for key, values in samples.items():
        print(figure(f"{key:18s}", statistics.median(values), "s",
                     GOAL_SECONDS if key.startswith("concurrent") else None, 2))
    print(figure("devloop ci: 'Applying' line -> 100th 'applied' line", applied, "s",
                 GOAL_SECONDS, 2) + f"; the whole ci run {wall:.1f} s")


if __name__ == "__main__":
    main()
