"""Manifest rewriting for deploy: image injection, pull policy, owner labels."""

from __future__ import annotations

import pytest

from devloop.k8s.inject import (
    OWNER_LABEL,
    RESOURCE_ANNOTATION,
    InjectionError,
    inject,
    object_key,
)
from devloop.model import plan


def deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "dev"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "initContainers": [{"name": "init", "image": "busybox"}],
                    "containers": [
                        {"name": "app", "image": "example.com/web"},
                        {"name": "side", "image": "redis", "imagePullPolicy": "Always"},
                    ],
                },
            },
        },
    }


KEY = "web:deployment.apps:dev"
DEPLOYED = {"example.com/web": "localhost:5000/example.com_web:devloop-0123456789abcdef"}


def test_object_key_matches_plan_key():
    assert object_key(deployment()) == KEY


def test_injects_image_at_json_path_and_leaves_input_untouched():
    original = deployment()
    injections = [plan.ImageInjection(KEY, "{.spec.template.spec.containers[0].image}",
                                      "example.com/web")]
    out = inject(original, injections, DEPLOYED, resource="web")
    containers = out["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == DEPLOYED["example.com/web"]
    assert containers[1]["image"] == "redis"
    assert original == deployment()


def test_wildcard_paths_are_supported():
    injections = [plan.ImageInjection(KEY, "{.spec.template.spec.containers[*].image}",
                                      "example.com/web")]
    out = inject(deployment(), injections, DEPLOYED)
    images = [c["image"] for c in out["spec"]["template"]["spec"]["containers"]]
    assert images == [DEPLOYED["example.com/web"]] * 2


def test_injections_for_other_objects_are_skipped():
    injections = [plan.ImageInjection("other:deployment.apps:dev",
                                      "{.spec.template.spec.containers[0].image}", "nope")]
    out = inject(deployment(), injections, DEPLOYED)
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "example.com/web"
    assert "imagePullPolicy" not in out["spec"]["template"]["spec"]["containers"][0]


def test_pull_policy_if_not_present_on_every_container_after_injection():
    injections = [plan.ImageInjection(KEY, "{.spec.template.spec.containers[0].image}",
                                      "example.com/web")]
    spec = inject(deployment(), injections, DEPLOYED)["spec"]["template"]["spec"]
    policies = {c["imagePullPolicy"] for c in spec["containers"] + spec["initContainers"]}
    assert policies == {"IfNotPresent"}


def test_owner_label_and_resource_annotation_on_object_and_pod_template_not_selector():
    out = inject(deployment(), [], {}, resource="web")
    assert out["metadata"]["labels"][OWNER_LABEL] == "devloop"
    assert out["metadata"]["annotations"][RESOURCE_ANNOTATION] == "web"
    template_meta = out["spec"]["template"]["metadata"]
    assert template_meta["labels"] == {"app": "web", OWNER_LABEL: "devloop"}
    assert template_meta["annotations"][RESOURCE_ANNOTATION] == "web"
    assert out["spec"]["selector"] == {"matchLabels": {"app": "web"}}


def test_cronjob_pod_template_is_labelled():
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}}
    out = inject(cron, [], {}, resource="c")
    tmpl = out["spec"]["jobTemplate"]["spec"]["template"]
    assert tmpl["metadata"]["labels"][OWNER_LABEL] == "devloop"


@pytest.mark.parametrize("kind", ["ConfigMap", "Service"])
def test_non_workloads_get_only_object_metadata(kind):
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}}
    out = inject(obj, [], {}, resource="r")
    assert set(out) == {"apiVersion", "kind", "metadata"}
    assert out["metadata"]["labels"] == {OWNER_LABEL: "devloop"}


def test_bare_pod_is_labelled_once():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "a", "image": "example.com/web"}]}}
    injections = [plan.ImageInjection("p:pod:default", "{.spec.containers[0].image}",
                                      "example.com/web")]
    out = inject(pod, injections, DEPLOYED, resource="p")
    assert out["spec"]["containers"][0]["image"] == DEPLOYED["example.com/web"]
    assert out["metadata"]["labels"] == {OWNER_LABEL: "devloop"}


def test_missing_build_result_is_an_error_naming_the_object():
    injections = [plan.ImageInjection(KEY, "{.spec.template.spec.containers[0].image}",
                                      "example.com/web")]
    with pytest.raises(InjectionError, match="web:deployment.apps:dev"):
        inject(deployment(), injections, {})
