"""A Compose service's health from its containers (devloop/compose/status.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from devloop.compose.containers import ContainerState, state_of
from devloop.compose.status import Health, assess


def container(status: str = "running", *, health: str = "", exit_code: int = 0,
              restarts: int = 0, cid: str = "c1", health_log: str = "") -> ContainerState:
    return ContainerState(id=cid, name=f"proj-svc-{cid}", image="sha256:x", status=status,
                          exit_code=exit_code, health=health, restarts=restarts,
                          health_log=health_log)


@pytest.mark.parametrize(("state", "health", "reason"), [
    (container(), Health.READY, "running"),
    (container(health="healthy"), Health.READY, "healthy"),
    (container(health="starting"), Health.PENDING, "running, healthcheck starting"),
    (container("created"), Health.PENDING, "container proj-svc-c1 is created"),
    (container("paused"), Health.PENDING, "container proj-svc-c1 is paused"),
    (container("exited", exit_code=0), Health.READY, "completed (exit code 0)"),
    (container("exited", exit_code=3), Health.FAILED, "container proj-svc-c1 exited with code 3"),
    (container("restarting", exit_code=1, restarts=4), Health.FAILED,
     "container proj-svc-c1 is restarting after exit code 1 (4 restarts)"),
    (container(health="unhealthy", health_log="PONG missing"), Health.FAILED,
     "container proj-svc-c1 is unhealthy: PONG missing"),
    (container("dead"), Health.FAILED, "container proj-svc-c1 is dead"),
])
def test_one_container_state_maps_to_health(state, health, reason):
    result = assess([state])
    assert (result.health, result.reason) == (health, reason)


def test_no_container_is_pending():
    assert assess([]).health == Health.PENDING


def test_a_failure_is_an_alert_and_a_healthy_service_has_none():
    assert assess([container("exited", exit_code=2)]).alerts == (
        "container proj-svc-c1 exited with code 2",)
    assert assess([container(health="healthy")]).alerts == ()


def test_restarts_since_the_last_up_are_an_alert_even_when_running_again():
    result = assess([container(restarts=3)], {"c1": 1})
    assert result.health == Health.READY
    assert result.alerts == ("container proj-svc-c1 restarted 2 times",)
    assert assess([container(restarts=3)], {"c1": 2}, last_exit={"c1": 137}).alerts == (
        "container proj-svc-c1 restarted 1 time, last exit code 137",)
    assert assess([container(restarts=3)], {"c1": 3}).alerts == ()


def test_the_worst_replica_decides():
    replicas = [container(cid="a"), container(health="starting", cid="b")]
    assert assess(replicas).health == Health.PENDING
    replicas.append(container("exited", exit_code=1, cid="c"))
    assert assess(replicas).health == Health.FAILED


def test_state_of_reads_docker_inspect():
    inspected = {
        "Id": "abcdef0123456789", "Name": "/proj-web-1", "Image": "sha256:1", "RestartCount": 2,
        "State": {"Status": "running", "ExitCode": 0, "StartedAt": "2026-01-01T00:00:00.5Z",
                  "Health": {"Status": "healthy", "Log": [{"Output": "ok\n"}]}},
        "NetworkSettings": {"Ports": {"8000/tcp": [{"HostIp": "127.0.0.1",
                                                    "HostPort": "18090"}],
                                      "9000/tcp": None}},
    }
    state = state_of(inspected)
    assert state.name == "proj-web-1"
    assert state.health == "healthy" and state.health_log == "ok"
    assert state.restarts == 2 and state.short_id == "abcdef012345"
    assert state.ports == ("127.0.0.1:18090->8000/tcp",)


def test_a_container_restarted_moments_ago_is_crash_looping_even_while_running():
    state = replace(container(restarts=2), started_at="2026-01-01T00:00:05Z")
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    looping = assess([state], {"c1": 0}, now=start + 6, last_exit={"c1": 7})
    assert looping.health == Health.FAILED
    assert looping.reason == ("container proj-svc-c1 is crash looping: restarted 2 times, "
                              "last exit code 7")
    assert assess([state], {"c1": 0}, now=start + 30).health == Health.READY
