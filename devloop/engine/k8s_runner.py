"""A Kubernetes resource: deploy it, live update it, watch it run.

`K8sRunner` composes one controller per concern:
- `k8s_deploy`: a full update, build (and push) every image the resource deploys, inject
  the new refs, apply the objects server-side (`k8s_custom_deploy` runs its `apply_cmd`
  instead, see `custom_deploy_runner`);
- `k8s_live`: when the changed files allow it, live update the running containers instead
  (copy the files in, run the `run` steps; see `live_update.py`);
- `k8s_monitor`: the runtime, workloads and pods from the session's shared watches, with
  their logs and events (`k8s_pods`) and port-forwards (`forwards`).
This module decides between them: an update whose changed files left every image's inputs
as deployed does nothing; one a live update can do is live; anything else is full.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from devloop.engine.cluster_health import overlay_for
from devloop.engine.k8s_deploy import ApplyDeployer, Deployer
from devloop.engine.k8s_live import LiveUpdater, count
from devloop.engine.k8s_monitor import K8sMonitor
from devloop.engine.k8s_seam import ClusterSeam
from devloop.engine.k8s_teardown import delete_owned
from devloop.engine.resync import Resyncer
from devloop.engine.runner import ResourceRunner, RunnerContext, RunnerHooks, RuntimeReport
from devloop.engine.unsupported import UnsupportedRunner
from devloop.model import plan as p
from devloop.model import trace as tr

if TYPE_CHECKING:
    from devloop.engine.runner_registry import TeardownContext


class K8sRunner:
    def __init__(self, resource: p.Resource, *, plan: p.Plan, cluster: ClusterSeam,
                 hooks: RunnerHooks, deployer: Deployer | None = None) -> None:
        self.name = resource.name
        self.resource = resource
        self.plan = plan
        self.cluster = cluster
        self.hooks = hooks
        self.deployer = deployer or ApplyDeployer(resource, plan=plan, cluster=cluster,
                                                  log=self._log)
        self.live = LiveUpdater(resource, plan=plan, cluster=cluster, hooks=hooks,
                                log=self._log)
        self.monitor = K8sMonitor(resource, cluster=cluster, hooks=hooks)
        # Live-updated files go again into a container that restarted (see resync.py).
        self.resync = Resyncer(self.name, self.live, cluster, hooks=hooks, log=self._log)
        # Content digest of each image's inputs as the running containers have them.
        self._digests: dict[str, str] = {}
        self._rebuild_next = False  # a full update failed: the next one is full too
        self._pending: set[str] = set()  # changed files not yet applied anywhere

    def _log(self, text: str, source: str = "build", prefix: str = "") -> None:
        self.hooks.log(self.name, text, source, prefix)

    async def update(self, changed_files: tuple[str, ...]) -> None:
        async with self.resync.updating():  # waits out an unreachable cluster
            await self._update(changed_files)

    async def _update(self, changed_files: tuple[str, ...]) -> None:
        # Files of a live update that failed stay pending: the next one copies them again.
        self._pending.update(changed_files)
        files = tuple(sorted(self._pending))
        started = time.monotonic()
        digests = await self.cluster.input_digests(self.plan, self.resource.image_refs)
        deployed = bool(self.live.deployed) and not self._rebuild_next
        if files and deployed and self._unchanged(files, digests):
            # A save that rewrote the same bytes, a file written before the last build
            # read it: the running containers already have this content.
            self._log(f"{count(len(files), 'changed file')}, same content as deployed: "
                      "nothing to update")
            self._pending.clear()
            return
        if deployed and await self.live.try_update(files, started):
            self.resync.synced(files)
            self._pending.clear()
            self._digests = digests
            return
        self._rebuild_next = True  # until a full update succeeds
        tr.mark(tr.Phase.PREPARE)  # hashing the inputs, choosing (the update's trace)
        result = await self.deployer.deploy()
        tr.mark(tr.Phase.APPLY)  # builds and pushes are marked; the rest is the apply
        self.live.deployed_by(result)
        self.resync.deployed()
        await self.monitor.watch(result.manifests, result.applied_yaml)
        # The inputs as the build read them: a file written after this update started
        # but before its build (a local_resource writing into the context) is in them.
        self._digests = result.inputs
        self._rebuild_next = False
        self._pending.clear()

    def _unchanged(self, files: tuple[str, ...], digests: dict[str, str]) -> bool:
        """Every changed file is in a build context, and every image is a docker_build
        whose inputs hash as deployed."""
        images = self.live.images()
        contexts = [os.path.join(os.path.abspath(i.context), "") for i in images
                    if isinstance(i, p.DockerBuild)]
        return bool(images) and all(
            any(os.path.abspath(f).startswith(c) for c in contexts) for f in files) and all(
            image.ref in digests and self._digests.get(image.ref) == digests[image.ref]
            for image in images)

    def runtime(self) -> RuntimeReport:
        return overlay_for(self.cluster, self.monitor.runtime())

    async def stop(self) -> None:
        await self.resync.stop()
        await self.monitor.stop()


def make_runner(resource: p.Resource, plan: p.Plan, context: RunnerContext) -> ResourceRunner:
    """The runner of a `k8s_yaml`/`k8s_resource` resource (see `runner_registry`)."""
    if context.cluster is None:
        return UnsupportedRunner(resource, "no Kubernetes cluster is connected (it is "
                                           "connected when `devloop up` starts with one)")
    return K8sRunner(resource, plan=plan, cluster=context.cluster, hooks=context.hooks)


async def tear_down(resource: p.Resource, plan: p.Plan, context: TeardownContext,
                    say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Delete the resource's objects that devloop created (see `k8s_teardown`); nothing
    without a cluster."""
    if context.kube is None:
        return []
    return await delete_owned(context.kube, resource,
                              delete_namespaces=context.delete_namespaces, say=say)
