"""Live update decisions: sync changed files into running containers, or rebuild the image.

Pure functions, no I/O beyond asking whether a changed file still exists (a missing file is
a deletion). Tilt's semantics:

- The first deploy is always a full build (`decide` is only asked after one).
- Every changed file must belong to an image the resource deploys that has live_update
  steps; a file matching `fall_back_on`, or under no `sync` path, rebuilds the image. A
  file of a base image without live_update of its own is the deployed image's to sync
  when that image builds on it.
- `restart_container()` restarts the container's main process, not the container: a
  docker_build whose live_update ends with it is built with its command under a wrapper
  (devloop.build.restart_wrapper), and the update ends by writing the wrapper's marker
  file. A custom_build's image is not built by devloop, so there it rebuilds.
- `run` steps run when no triggers are given or a changed file is under one of them.
- A container that restarted, or a pod that appeared, since the last live update lost the
  synced files (it starts from the image): the next change rebuilds.
- A container of the deployed pod that is still being created will run the deployed image:
  the live update waits for it (`Starting`) rather than rebuilding. Its app can answer
  before the pod's status says it runs (the forward opens on the container's Started
  event), so a user may well save in that second.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devloop.build import restart_wrapper
from devloop.build.context import ContextFilter
from devloop.engine.watcher import matches_any
from devloop.model import plan as p


@dataclass(frozen=True)
class Copy:
    """A local file or directory and where it goes in the container."""

    local: str
    remote: str


@dataclass(frozen=True)
class ImageUpdate:
    """What to do in every container running one image."""

    image_ref: str
    files: tuple[str, ...]  # the changed files of this image, as given
    copies: tuple[Copy, ...]
    deletes: tuple[str, ...]  # remote paths of files deleted locally
    runs: tuple[p.RunStep, ...]


@dataclass(frozen=True)
class LiveUpdate:
    images: tuple[ImageUpdate, ...]


@dataclass(frozen=True)
class FullBuild:
    reason: str


# A container waiting for these is being started for the first time (its image pulled,
# its init containers run), not failing: it will run what its pod spec says.
STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})


@dataclass(frozen=True)
class Container:
    """A container of the resource's pods, as a live update target."""

    namespace: str
    pod: str
    name: str
    image: str  # the image reference in the pod spec
    running: bool
    restarts: int
    # Not running yet, but being created (see STARTING_REASONS), or running while the
    # pod's phase still says Pending: it runs shortly, with the pod spec's image.
    starting: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.pod, self.name)

    def __str__(self) -> str:
        return f"{self.pod}/{self.name}"


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root == "/" else root + "/")


def inputs_of(image: p.ImageTarget, base: str) -> Callable[[str], bool]:
    """Does a change to a path change the inputs of `image`? (context rules, deps, ignore)"""
    if isinstance(image, p.DockerBuild):
        context = ContextFilter.for_build(image)
        return lambda path: not context.is_ignored(path)
    return lambda path: any(_under(path, dep) for dep in image.deps) and not matches_any(
        path, base, image.ignore)


def decide(images: Sequence[p.ImageTarget], deployed: Collection[str],
           changed: Iterable[str], *, base: str,
           exists: Callable[[str], bool] = os.path.lexists) -> LiveUpdate | FullBuild:
    """Live update or full build for one change set.

    `images` are every image the resource builds (with image_deps), `deployed` the refs that
    its pods run, `base` the Tiltfile's directory (custom_build ignore patterns are relative
    to it)."""
    files = sorted(set(changed))
    if not files:
        return FullBuild("no changed files (a triggered update rebuilds)")
    inputs = [(image, inputs_of(image, base)) for image in images]
    by_image: dict[str, list[str]] = {}
    for path in files:
        # A file no image reads (ignored by every image) cannot make the containers stale.
        for image in [image for image, is_input in inputs if is_input(path)]:
            by_image.setdefault(image.ref, []).append(path)
    if not by_image:
        return FullBuild(f"none of the changed files is an input of the images ({files[0]})")
    _carry_to_dependents(images, deployed, by_image)
    updates: list[ImageUpdate] = []
    for image in images:
        if image.ref not in by_image:
            continue
        result = _image_update(image, image.ref in deployed, by_image[image.ref], exists)
        if isinstance(result, FullBuild):
            return result
        updates.append(result)
    return LiveUpdate(tuple(updates))


def _tree(image: p.ImageTarget, by_ref: Mapping[str, p.ImageTarget]) -> set[str]:
    """The refs `image` builds on, directly or not."""
    found: set[str] = set()
    todo = list(getattr(image, "image_deps", ()))
    while todo:
        ref = todo.pop()
        if ref not in found:
            found.add(ref)
            if ref in by_ref:
                todo.extend(getattr(by_ref[ref], "image_deps", ()))
    return found


def _carry_to_dependents(images: Sequence[p.ImageTarget], deployed: Collection[str],
                         by_image: dict[str, list[str]]) -> None:
    """Changed files of an image that only deployed images with live_update build on are
    theirs to sync, like Tilt's live update over an image tree (restart_process builds the
    user's image as a base and live-updates the one on top): moved in place."""
    by_ref = {image.ref: image for image in images}
    carriers = [(image.ref, _tree(image, by_ref)) for image in images
                if image.ref in deployed and image.live_update]
    # A base image counts as deployed too (the resource's image refs include image_deps);
    # only one without live_update of its own hands its files on.
    for ref in [ref for ref in by_image
                if ref not in deployed or not getattr(by_ref.get(ref), "live_update", ())]:
        dependents = [carrier for carrier, tree in carriers if ref in tree]
        if not dependents:
            continue
        moved = by_image.pop(ref)
        for carrier in dependents:
            by_image[carrier] = sorted(set(by_image.get(carrier, [])) | set(moved))


def _image_update(image: p.ImageTarget, deployed: bool, files: list[str],
                  exists: Callable[[str], bool]) -> ImageUpdate | FullBuild:
    steps = image.live_update
    if not deployed:
        return FullBuild(f"{files[0]} changed image {image.ref}, which only other images "
                         "build on")
    if not steps:
        return FullBuild(f"{files[0]} changed image {image.ref}, which has no live_update")
    restart = restart_wrapper.restarts(image)
    if restart and not isinstance(image, p.DockerBuild):
        return FullBuild(f"image {image.ref}: restart_container() needs the restart wrapper "
                         "that only docker_build images get; rebuilding")
    fall_back = [path for step in steps if isinstance(step, p.FallBackOnStep)
                 for path in step.paths]
    syncs = [step for step in steps if isinstance(step, p.SyncStep)]
    copies: list[Copy] = []
    deletes: list[str] = []
    for path in files:
        if any(_under(path, root) for root in fall_back):
            return FullBuild(f"{path} matches fall_back_on of image {image.ref}")
        targets = [_remote(path, sync) for sync in syncs if _under(path, sync.local_path)]
        if not targets:
            return FullBuild(f"{path} is not under any sync() path of image {image.ref}")
        if exists(path):
            copies += [Copy(path, remote) for remote in targets]
        else:
            deletes += targets
    runs = tuple(step for step in steps if isinstance(step, p.RunStep) and (
        not step.triggers or any(_under(path, t) for path in files for t in step.triggers)))
    if restart:
        runs += (p.RunStep(restart_wrapper.touch_command(), True, (), False),)
    return ImageUpdate(image.ref, tuple(files), tuple(copies), tuple(deletes), runs)


def _remote(path: str, sync: p.SyncStep) -> str:
    rel = os.path.relpath(path, sync.local_path)
    if rel == ".":
        return sync.remote_path
    return posixpath.join(sync.remote_path, *rel.split(os.sep))


def containers_of(pods: Iterable[Mapping[str, Any]], default_namespace: str) -> list[Container]:
    """Every container of pods that are not being deleted, with its running state."""
    found: list[Container] = []
    for pod in pods:
        meta = pod.get("metadata", {})
        if meta.get("deletionTimestamp"):
            continue
        statuses = {s.get("name"): s for s in pod.get("status", {}).get("containerStatuses")
                    or []}
        phase = pod.get("status", {}).get("phase")
        for container in pod.get("spec", {}).get("containers", []):
            status = statuses.get(container["name"], {})
            state = status.get("state") or {}
            running = phase == "Running" and "running" in state
            waiting = (state.get("waiting") or {}).get("reason")
            found.append(Container(
                namespace=meta.get("namespace") or default_namespace,
                pod=meta.get("name", ""), name=container["name"],
                image=container.get("image", ""), running=running,
                restarts=int(status.get("restartCount", 0)),
                starting=not running and phase in ("Pending", "Running") and (
                    not state or "running" in state or waiting in STARTING_REASONS)))
    return found


@dataclass(frozen=True)
class Synced:
    """What the live updates since the last deploy touched: every pod that existed then,
    and the restart count of each container that received files."""

    pods: frozenset[tuple[str, str]]
    restarts: Mapping[tuple[str, str, str], int]


@dataclass(frozen=True)
class Starting:
    """A target container is being started: ask again once it runs."""

    container: Container


def targets_or_reason(containers: Sequence[Container], image: str,
                      synced: Synced | None) -> list[Container] | FullBuild | Starting:
    """The containers running `image` (the reference deployed), why a rebuild is needed,
    or a container to wait for first.

    `synced` is None when nothing was live updated since the last deploy: then every
    container holds the deployed image's files. Otherwise a pod that appeared since, or a
    container that restarted since receiving files, lost them (it starts from the image)."""
    targets = [c for c in containers if c.image == image]
    if not targets:
        return FullBuild(f"no container runs {image}")
    starting: Container | None = None
    for container in targets:
        if not container.running and not container.starting:
            return FullBuild(f"container {container} is not running")
        if synced is not None:
            if (container.namespace, container.pod) not in synced.pods:
                return FullBuild(f"pod {container.pod} started after the last live update")
            before = synced.restarts.get(container.key)
            if before is not None and before != container.restarts:
                return FullBuild(
                    f"container {container} restarted since the last live update")
        if not container.running:
            starting = starting or container
    return Starting(starting) if starting else targets
