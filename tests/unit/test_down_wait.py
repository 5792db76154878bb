"""`devloop down`: what the wait names, and kubectl's --wait=true|false."""

from __future__ import annotations

import pytest

from devloop.cli import _parser
from devloop.daemon.down import stopping_pods


def pod(name: str, deleting: bool, grace: int | None = 30) -> dict:
    meta: dict = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2030-01-01T00:00:00Z"
        meta["deletionGracePeriodSeconds"] = grace
    return {"metadata": meta}


def test_stopping_pods_of_the_waited_for_workloads_with_their_grace_period():
    pods = [pod("web-5d9c-abcde", True), pod("web-5d9c-fghij", False),
            pod("webhook-1", True), pod("db-0", True, None), pod("other-1", True)]
    assert stopping_pods(pods, ["web", "db"]) == [
        "pod web-5d9c-abcde (stopping, grace period 30s)", "pod db-0 (stopping)"]


@pytest.mark.parametrize(("argv", "wait"), [
    ([], True), (["--wait"], True), (["--wait=true"], True), (["--wait=false"], False),
    (["--wait", "false"], False), (["--wait=0"], False),
])
def test_down_wait_takes_kubectls_values(argv, wait):
    assert _parser().parse_args(["down", *argv]).wait is wait


def test_down_wait_rejects_other_values():
    with pytest.raises(SystemExit):
        _parser().parse_args(["down", "--wait=maybe"])
