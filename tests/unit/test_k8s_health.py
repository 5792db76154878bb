"""assess(): the workload and pod states a person would otherwise read with kubectl."""

from __future__ import annotations

from devloop.k8s.health import Health, assess


def pod(name="p", phase="Running", ready=True, waiting="", restarts=0, terminated=None,
        deleting=False):
    status = {"phase": phase,
              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
              "containerStatuses": [{"name": "app", "restartCount": restarts,
                                     "state": {"waiting": {"reason": waiting}} if waiting
                                     else {"running": {}},
                                     "lastState": {"terminated": terminated} if terminated
                                     else {}}]}
    meta = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "now"
    return {"metadata": meta, "status": status, "spec": {"containers": [{"name": "app"}]}}


def deployment(replicas=1, updated=1, ready=1, total=1, generation=2, observed=2):
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated,
                       "readyReplicas": ready, "replicas": total}}


def test_rolled_out_deployment_is_ready():
    assert assess("Deployment", deployment(), [pod()]).health == Health.READY


def test_deployment_waits_for_new_replicas_to_be_ready():
    result = assess("Deployment", deployment(ready=0), [pod(ready=False)])
    assert result.health == Health.PENDING
    assert result.reason == "0 of 1 replicas ready"


def test_deployment_waits_while_old_replicas_terminate():
    result = assess("Deployment", deployment(total=2), [pod(), pod("old", deleting=True)])
    assert result.health == Health.PENDING


def test_unobserved_generation_is_pending():
    assert assess("Deployment", deployment(observed=1), [pod()]).health == Health.PENDING


def test_crash_loop_is_an_error_with_alert():
    crashing = pod(ready=False, waiting="CrashLoopBackOff", restarts=3,
                   terminated={"reason": "Error", "exitCode": 1})
    result = assess("Deployment", deployment(ready=0), [crashing])
    assert result.health == Health.ERROR
    assert result.alerts == ("pod p: app: CrashLoopBackOff",)
    assert result.pods[0].restarts == 3
    assert result.pods[0].last_termination == "app: Error exit code 1"


def test_image_pull_error_is_an_error():
    result = assess("Deployment", deployment(ready=0), [pod(ready=False, waiting="ErrImagePull")])
    assert result.health == Health.ERROR


def test_problems_of_terminating_pods_are_ignored():
    gone = pod("old", ready=False, waiting="CrashLoopBackOff", deleting=True)
    assert assess("Deployment", deployment(total=1), [pod(), gone]).health == Health.READY


def test_completed_job():
    job = {"spec": {"completions": 1}, "status": {"succeeded": 1}}
    assert assess("Job", job, []).health == Health.COMPLETED


def test_failed_job_is_an_error():
    job = {"spec": {}, "status": {"conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
    result = assess("Job", job, [])
    assert result.health == Health.ERROR
    assert "BackoffLimitExceeded" in result.reason


def test_missing_workload_is_pending():
    assert assess("Deployment", None, []).health == Health.PENDING


def test_retried_container_errors_are_pending_and_named_not_fatal():
    stuck = pod(ready=False, waiting="CreateContainerConfigError")
    result = assess("Deployment", deployment(ready=0), [stuck])
    assert result.health == Health.PENDING
    assert result.stuck == "pod p: app: CreateContainerConfigError"
