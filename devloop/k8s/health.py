"""Is a workload healthy? A pure reading of the workload's and its pods' status.

The same answers `kubectl rollout status` gives, plus the pod problems a person would
otherwise dig out with kubectl: crash loops, image pull errors, failing probes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

# Waiting reasons that will not fix themselves: report them as errors right away.
FATAL_WAITING = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                 "ErrImageNeverPull"}
# The kubelet retries these, and some clear by themselves: a ConfigMap created by the same
# apply may not be in the kubelet's cache yet ("failed to sync configmap cache"). They are
# errors only once they last (the runner decides how long, see K8sRunner).
SLOW_WAITING = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


class Health(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    COMPLETED = "completed"
    ERROR = "error"


@dataclass(frozen=True)
class PodSummary:
    name: str
    phase: str
    ready: bool
    restarts: int
    problem: str = ""
    last_termination: str = ""
    containers: tuple[str, ...] = ()
    created: str = ""
    deleting: bool = False
    stuck: str = ""  # a SLOW_WAITING problem: an error only if it lasts


@dataclass(frozen=True)
class Assessment:
    health: Health
    reason: str
    pods: tuple[PodSummary, ...] = ()
    alerts: tuple[str, ...] = field(default_factory=tuple)
    stuck: str = ""  # why a pod is stuck (PENDING health); the runner escalates if it lasts


def summarize_pod(pod: dict[str, Any]) -> PodSummary:
    meta, status, spec = pod.get("metadata", {}), pod.get("status", {}), pod.get("spec", {})
    statuses = (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or [])
    problem, last_termination, restarts, stuck = "", "", 0, ""
    for container in statuses:
        restarts += int(container.get("restartCount", 0))
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason", "")
        message = waiting.get("message", "")
        text = f"{container.get('name')}: {reason}" + (f" ({message})" if message else "")
        if reason in FATAL_WAITING and not problem:
            problem = text
        elif reason in SLOW_WAITING and not stuck:
            stuck = text
        terminated = (container.get("lastState") or {}).get("terminated") or {}
        if terminated:
            last_termination = (f"{container.get('name')}: {terminated.get('reason', '')} "
                                f"exit code {terminated.get('exitCode')}")
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    if not problem and status.get("phase") == "Failed":
        problem = f"pod failed: {status.get('reason') or status.get('message') or 'Error'}"
    names = tuple(c.get("name", "") for c in (spec.get("initContainers") or [])
                  + (spec.get("containers") or []))
    return PodSummary(meta.get("name", ""), status.get("phase", "Pending"), ready, restarts,
                      problem, last_termination, names, meta.get("creationTimestamp", ""),
                      bool(meta.get("deletionTimestamp")), stuck)


def _rollout_done(kind: str, obj: dict[str, Any]) -> tuple[bool, str]:
    spec, status = obj.get("spec", {}), obj.get("status", {})
    generation = obj.get("metadata", {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return False, "waiting for the controller to observe the new spec"
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        want = spec.get("replicas", 1)
        updated = status.get("updatedReplicas", want if kind == "ReplicaSet" else 0)
        ready = status.get("readyReplicas", 0)
        if updated < want:
            return False, f"{updated} of {want} replicas updated"
        if ready < want:
            return False, f"{ready} of {want} replicas ready"
        if kind == "Deployment" and status.get("replicas", 0) > want:
            return False, "old replicas are terminating"
        return True, ""
    if kind == "DaemonSet":
        want = status.get("desiredNumberScheduled", 0)
        ready = status.get("numberReady", 0)
        return (ready >= want and want > 0), f"{ready} of {want} pods ready"
    return True, ""


def assess(kind: str, obj: dict[str, Any] | None, pods: list[dict[str, Any]]) -> Assessment:
    summaries = tuple(summarize_pod(pod) for pod in pods)
    live = [s for s in summaries if not s.deleting]
    alerts = tuple(f"pod {s.name}: {s.problem}" for s in live if s.problem)
    if alerts:
        return Assessment(Health.ERROR, alerts[0], summaries, alerts)
    stuck = next((f"pod {s.name}: {s.stuck}" for s in live if s.stuck), "")
    if stuck:
        return Assessment(Health.PENDING, stuck, summaries, stuck=stuck)
    if obj is None:
        return Assessment(Health.PENDING, f"{kind} not found yet", summaries)
    if kind == "Job":
        status, spec = obj.get("status", {}), obj.get("spec", {})
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Failed" and condition.get("status") == "True":
                reason = f"job failed: {condition.get('reason', '')} {condition.get('message', '')}"
                return Assessment(Health.ERROR, reason.strip(), summaries, (reason.strip(),))
        if status.get("succeeded", 0) >= spec.get("completions", 1):
            return Assessment(Health.COMPLETED, "completed", summaries)
        return Assessment(Health.PENDING, "job running", summaries)
    if kind == "Pod":
        pod = summaries[0] if summaries else summarize_pod(obj)
        if pod.phase == "Succeeded":
            return Assessment(Health.COMPLETED, "completed", summaries)
        return Assessment(Health.READY if pod.ready else Health.PENDING,
                          "" if pod.ready else f"pod {pod.phase.lower()}", summaries)
    if kind == "CronJob":
        return Assessment(Health.READY, "", summaries)
    done, reason = _rollout_done(kind, obj)
    if done:
        return Assessment(Health.READY, "", summaries)
    return Assessment(Health.PENDING, reason, summaries)
