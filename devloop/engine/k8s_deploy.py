"""Deploying a Kubernetes resource: build (and push) its images, apply its objects.

A `Deployer` does one full deploy and says what it deployed; `K8sRunner` then hands the
objects to the runtime monitor (`k8s_monitor`) and the image refs to the live updater
(`k8s_live`). `ApplyDeployer` is `k8s_yaml`'s: inject the new image refs into the objects
and apply them server-side. `k8s_custom_deploy`'s runs a command instead
(`custom_deploy_runner.ApplyCmdDeployer`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from devloop.engine.k8s_seam import ClusterSeam
from devloop.k8s.apply import apply_all
from devloop.model import plan as p
from devloop.model import trace as tr


@dataclass(frozen=True)
class Deployed:
    """What a full deploy left running."""

    manifests: list[dict[str, Any]]  # the objects, as applied
    images: dict[str, str]  # image ref -> the reference the objects run
    applied_yaml: str  # shown in the resource's details
    # Content digest of each image's inputs as the build read them; empty when a deploy
    # reads files of its own, so unchanged images never mean an unchanged deploy.
    inputs: dict[str, str] = field(default_factory=dict)


class Deployer(Protocol):
    async def deploy(self) -> Deployed:
        """Build and deploy everything; raise UpdateError on failure."""
        ...


class ImageDeployer:
    """What every deployer holds: the resource, its plan (for its images), the cluster and
    the resource's build log."""

    def __init__(self, resource: p.Resource, *, plan: p.Plan, cluster: ClusterSeam,
                 log: Callable[[str], None]) -> None:
        self.resource = resource
        self.plan = plan
        self.cluster = cluster
        self._log = log


class ApplyDeployer(ImageDeployer):
    """Build the images, inject their refs, apply the objects server-side."""

    async def deploy(self) -> Deployed:
        inputs: dict[str, str] = {}
        images = await self.cluster.build_images(self.plan, self.resource.image_refs,
                                                 self._log, inputs=inputs)
        manifests = self.cluster.prepare(self.resource, images)
        self._log(f"Applying {len(manifests)} objects")

        async def apply(manifest: dict[str, Any]) -> dict[str, Any]:
            applied = await self.cluster.apply(manifest)
            tr.applied(applied)  # its generation, for the rollout
            return applied

        def done(manifest: dict[str, Any]) -> None:
            meta = manifest.get("metadata", {})
            self._log(f"  {manifest.get('kind')}/{meta.get('name')} applied")

        # In kind order, several at once (k8s/apply.py): not one round trip after another.
        await apply_all(apply, manifests, on_applied=done)
        return Deployed(manifests, images, yaml.safe_dump_all(manifests, sort_keys=False),
                        inputs)
