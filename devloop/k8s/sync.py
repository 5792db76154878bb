"""File sync into a running container over the exec API: deletions, then one tar stream.

Like Tilt, the container needs `rm` and `tar` (`tar -x -C / -f -` reads the archive from
stdin, so paths in the archive are the remote paths without the leading slash). The
archive holds only the files of one change set, so it is built in memory. The cluster
keeps a `tar -x` started ahead in each container it synced into (`standby.py`), so the
next sync there does not wait for a command to start.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
import tarfile
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from devloop.k8s.errors import KubeError
from devloop.k8s.streams import ExecResult

ExecFn = Callable[[str, str, str, list[str], bytes | None], Awaitable[ExecResult]]
# (namespace, pod, container, archive): EXTRACT_COMMAND run there with the archive on stdin.
ExtractFn = Callable[[str, str, str, bytes], Awaitable[ExecResult]]

EXTRACT_COMMAND = ("tar", "-x", "-C", "/", "-f", "-")

# An exec whose connection was lost, or that the API server could not pass on, is tried
# again after these pauses before the sync counts as failed: right after a kubelet
# restarts, its first exec can fail while the next works, and a full rebuild instead
# costs a rollout (seconds to tens of seconds). Deleting and extracting are idempotent.
EXEC_RETRY_PAUSES = (0.25, 0.5, 1.0, 2.0)


class SyncError(Exception):
    """The files could not be put in the container (no tar, pod gone, exec refused);
    the caller falls back to a full rebuild."""


@dataclass(frozen=True)
class Archive:
    data: bytes
    files: int  # regular files and links in it (directories not counted)
    paths: tuple[str, ...] = ()  # remote paths of the top-level entries

    def overlaps(self, remote_paths: Iterable[str]) -> bool:
        """Does deleting any of `remote_paths` touch what this archive writes?"""
        for deleted in remote_paths:
            deleted = deleted.rstrip("/")
            for path in self.paths:
                path = path.rstrip("/")
                if path == deleted or path.startswith(deleted + "/") or \
                        deleted.startswith(path + "/"):
                    return True
        return False


def tar_archive(copies: Iterable[tuple[str, str]],
                skip: Callable[[str], bool] = lambda path: False) -> Archive:
    """A tar of (local path, remote path) pairs; directories go in with their contents,
    minus what `skip` (the image's ignore rules) leaves out. Missing paths are skipped:
    a file deleted between the change and the sync is the next change set's deletion."""
    buffer = io.BytesIO()
    count = 0
    paths: list[str] = []
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for local, remote in copies:
            paths.append(remote)
            for path, arcname in _walk(local, remote.lstrip("/"), skip):
                try:
                    info = tar.gettarinfo(path, arcname)
                except FileNotFoundError:
                    continue
                # The container's user owns what it extracts; local ids mean nothing there.
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.isreg():
                    try:
                        with open(path, "rb") as f:
                            tar.addfile(info, f)
                    except FileNotFoundError:
                        continue
                else:
                    tar.addfile(info)
                count += 0 if info.isdir() else 1
    return Archive(buffer.getvalue(), count, tuple(paths))


def _walk(local: str, arcname: str, skip: Callable[[str], bool]
          ) -> Iterable[tuple[str, str]]:
    try:
        mode = os.lstat(local).st_mode
    except FileNotFoundError:
        return
    yield local, arcname
    if not stat.S_ISDIR(mode):
        return
    for root, dirs, files in os.walk(local):
        rel_root = os.path.relpath(root, local)
        dirs[:] = sorted(d for d in dirs if not skip(os.path.join(root, d)))
        for name in [*dirs, *sorted(files)]:
            path = os.path.join(root, name)
            if name in files and skip(path):
                continue
            rel = name if rel_root == "." else os.path.join(rel_root, name)
            yield path, arcname.rstrip("/") + "/" + rel.replace(os.sep, "/")


async def apply_in_container(exec_fn: ExecFn, namespace: str, pod: str, container: str, *,
                             archive: Archive | None, deletes: Sequence[str],
                             extract_fn: ExtractFn | None = None) -> None:
    """Delete `deletes` and extract `archive` at / in the container; SyncError when it
    cannot be done. Deleting comes first when both touch the same paths; otherwise both
    run at once (each exec is a round trip to the kubelet). `extract_fn` runs the
    extraction when given (the cluster's, with an extractor started ahead), else `exec_fn`
    runs EXTRACT_COMMAND."""
    where = f"{pod}/{container}"
    if extract_fn is None:
        def run_extract(namespace: str, pod: str, container: str,
                        data: bytes) -> Awaitable[ExecResult]:
            return exec_fn(namespace, pod, container, list(EXTRACT_COMMAND), data)
        extract_fn = run_extract
    extract = archive is not None and archive.files > 0
    if deletes and extract and archive is not None and archive.overlaps(deletes):
        await _delete(exec_fn, namespace, pod, container, deletes, where)
        await _extract(extract_fn, namespace, pod, container, archive, where)
        return
    jobs = []
    if deletes:
        jobs.append(_delete(exec_fn, namespace, pod, container, deletes, where))
    if extract and archive is not None:
        jobs.append(_extract(extract_fn, namespace, pod, container, archive, where))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _delete(exec_fn: ExecFn, namespace: str, pod: str, container: str,
                  deletes: Sequence[str], where: str) -> None:
    argv = ["rm", "-rf", "--", *deletes]
    result = await _retried(lambda: exec_fn(namespace, pod, container, argv, None),
                            "rm", where)
    if result.exit_code != 0:
        raise SyncError(f"removing deleted files in {where} failed "
                        f"(exit {result.exit_code}): {_text(result)}")


async def _extract(extract_fn: ExtractFn, namespace: str, pod: str, container: str,
                   archive: Archive, where: str) -> None:
    result = await _retried(lambda: extract_fn(namespace, pod, container, archive.data),
                            EXTRACT_COMMAND[0], where)
    if result.exit_code == 127:
        raise SyncError(_no_tar(where))
    if result.exit_code != 0:
        raise SyncError(f"extracting the changed files in {where} failed "
                        f"(exit {result.exit_code}): {_text(result)}")


async def _retried(attempt: Callable[[], Awaitable[ExecResult]], program: str,
                   where: str) -> ExecResult:
    for pause in (*EXEC_RETRY_PAUSES, None):
        try:
            return await attempt()
        except KubeError as exc:
            if exc.temporary and pause is not None and not _not_found(exc.message, program):
                await asyncio.sleep(pause)
                continue
            raise _sync_error(exc, program, where) from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def _sync_error(exc: KubeError, program: str, where: str) -> SyncError:
    if _not_found(exc.message, program):
        return SyncError(_no_tar(where) if program == "tar" else
                         f"container {where} has no `{program}`: {exc.message}")
    return SyncError(f"exec in {where} failed: {exc.message}")


def _no_tar(where: str) -> str:
    return (f"container {where} has no `tar`: live update copies files with `tar -x` in the "
            "container, so the image needs tar (e.g. install it in the Dockerfile)")


def _not_found(message: str, program: str) -> bool:
    lowered = message.lower()
    return program in lowered and ("not found" in lowered or "no such file" in lowered)


def _text(result: ExecResult) -> str:
    return (result.stderr or result.stdout).decode(errors="replace").strip()
