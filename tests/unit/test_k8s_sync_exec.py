"""Putting files in a container over exec (devloop/k8s/sync.py): what counts as a failed
sync, and that a lost connection is tried again before it does."""

from __future__ import annotations

import pytest

from devloop.k8s import sync
from devloop.k8s.errors import KubeError
from devloop.k8s.streams import ExecResult
from devloop.k8s.streams import _exit_code as exit_code
from devloop.k8s.sync import Archive, SyncError, apply_in_container

ARCHIVE = Archive(data=b"tar bytes", files=1, paths=("app/app.py",))


class Exec:
    """An exec that fails with `errors` first, in order, then works."""

    def __init__(self, *errors: KubeError, exit_code: int = 0) -> None:
        self.errors = list(errors)
        self.exit_code = exit_code
        self.calls: list[tuple[list[str], bytes | None]] = []

    async def __call__(self, namespace: str, pod: str, container: str, argv: list[str],
                       stdin: bytes | None) -> ExecResult:
        self.calls.append((argv, stdin))
        if self.errors:
            raise self.errors.pop(0)
        return ExecResult(self.exit_code, b"", b"tar: oops" if self.exit_code else b"")


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync, "EXEC_RETRY_PAUSES", (0.0,) * len(sync.EXEC_RETRY_PAUSES))


async def test_a_lost_connection_is_tried_again_and_the_files_arrive() -> None:
    # As after a kubelet restart: the first exec loses its connection, the next works.
    lost = KubeError("exec in ns/api: connection lost: socket is already closed.",
                     temporary=True)
    run = Exec(lost, lost)
    await apply_in_container(run, "ns", "api", "api", archive=ARCHIVE, deletes=())
    assert [argv for argv, _ in run.calls] == [["tar", "-x", "-C", "/", "-f", "-"]] * 3
    assert all(stdin == ARCHIVE.data for _, stdin in run.calls)


async def test_a_connection_that_stays_lost_is_a_failed_sync_after_the_retries() -> None:
    lost = KubeError("connection lost", temporary=True)
    run = Exec(*[lost] * 10)
    with pytest.raises(SyncError, match="exec in api/api failed: connection lost"):
        await apply_in_container(run, "ns", "api", "api", archive=ARCHIVE, deletes=())
    assert len(run.calls) == len(sync.EXEC_RETRY_PAUSES) + 1


async def test_a_lasting_error_fails_at_once() -> None:
    gone = KubeError("pods \"api\" not found", status=404)
    run = Exec(gone)
    with pytest.raises(SyncError, match="not found"):
        await apply_in_container(run, "ns", "api", "api", archive=ARCHIVE, deletes=())
    assert len(run.calls) == 1


async def test_no_tar_in_the_image_is_said_at_once_and_not_retried() -> None:
    missing = KubeError('exec: "tar": executable file not found in $PATH', temporary=True)
    run = Exec(missing)
    with pytest.raises(SyncError, match="has no `tar`"):
        await apply_in_container(run, "ns", "api", "api", archive=ARCHIVE, deletes=())
    assert len(run.calls) == 1


async def test_a_command_that_fails_is_not_run_again() -> None:
    run = Exec(exit_code=2)
    with pytest.raises(SyncError, match="exit 2"):
        await apply_in_container(run, "ns", "api", "api", archive=ARCHIVE, deletes=())
    assert len(run.calls) == 1


def test_an_exec_status_with_a_server_error_code_is_temporary() -> None:
    # As the API server sends it on the exec's status channel while a restarted kubelet
    # does not know the pod yet.
    raw = ('{"metadata":{},"status":"Failure","message":"Internal error occurred: unable to '
           'upgrade connection: pod does not exist","reason":"InternalError","code":500}')
    with pytest.raises(KubeError) as caught:
        exit_code(raw, "exec in ns/api")
    assert caught.value.temporary and caught.value.status == 500
    assert "pod does not exist" in caught.value.message
    refused = '{"status":"Failure","message":"not allowed","reason":"Forbidden","code":403}'
    with pytest.raises(KubeError) as caught:
        exit_code(refused, "exec in ns/api")
    assert not caught.value.temporary
    with pytest.raises(KubeError) as caught:
        exit_code('{"status":"Failure","message":"odd"}', "exec in ns/api")
    assert not caught.value.temporary
    done = ('{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":'
            '[{"reason":"ExitCode","message":"3"}]}}')
    assert exit_code(done, "exec") == 3
    assert exit_code('{"status":"Success"}', "exec") == 0
