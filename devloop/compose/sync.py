"""Live update of a Compose container over the Docker API: delete, upload a tar, run, restart.

Unlike the Kubernetes exec path, the files go in through the engine's archive upload
(`PUT /containers/{id}/archive`), so the image needs no `tar`; only deletions and `run`
steps exec in the container. A Docker container keeps its filesystem across restarts,
so `restart_container()` keeps the synced files.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devloop.compose.containers import ContainerApi, ContainerError
from devloop.k8s.sync import Archive
from devloop.model import plan as p


class SyncFailed(Exception):
    """Files could not be put in the container: the caller rebuilds instead."""


class RunFailed(Exception):
    """A `run` step exited non-zero: the live update failed (Tilt does not rebuild then)."""


@dataclass(frozen=True)
class StepRecord:
    step: str
    detail: str
    exit_code: int = 0


def shown(run: p.RunStep) -> str:
    return run.command[2] if run.shell and len(run.command) > 2 else shlex.join(run.command)


async def update_container(api: ContainerApi, container_id: str, *, archive: Archive,
                           deletes: Sequence[str], runs: Sequence[p.RunStep], restart: bool,
                           log: Callable[[str], None]) -> list[StepRecord]:
    """Apply one image's change set to one container; raise SyncFailed or RunFailed."""
    records: list[StepRecord] = []
    try:
        if deletes:
            result = await api.exec(container_id, ["rm", "-rf", "--", *deletes])
            if result.exit_code != 0:
                raise SyncFailed(f"rm in {container_id[:12]} exited with code "
                                 f"{result.exit_code}: {result.output.strip()}")
            records.append(StepRecord("delete", f"{len(deletes)} paths"))
        if archive.files:
            await api.put_archive(container_id, archive.data)
            records.append(StepRecord("sync", f"{archive.files} files"))
    except ContainerError as exc:
        raise SyncFailed(str(exc)) from None
    for run in runs:
        text = shown(run)
        if not run.echo_off:
            log(f"Live update: running `{text}` in {container_id[:12]}")
        try:
            result = await api.exec(container_id, list(run.command))
        except ContainerError as exc:
            raise SyncFailed(f"run `{text}`: {exc}") from None
        for line in result.output.rstrip().splitlines():
            log(line)
        records.append(StepRecord("run", text, result.exit_code))
        if result.exit_code != 0:
            raise RunFailed(f"live update: `{text}` failed in {container_id[:12]} with exit "
                            f"code {result.exit_code}")
    if restart:
        try:
            await api.restart(container_id)
        except ContainerError as exc:
            raise SyncFailed(str(exc)) from None
        records.append(StepRecord("restart", container_id[:12]))
    return records
