"""allow_k8s_contexts: local clusters deploy, anything else is refused with what to add."""

from __future__ import annotations

import pytest

from devloop.k8s.contexts import is_local, refusal


@pytest.mark.parametrize("context", [
    "kind-kind", "kind-dev", "k3d-k3s-default", "minikube", "docker-desktop",
    "docker-for-desktop", "microk8s", "rancher-desktop", "orbstack", "colima",
    "krucible-x", "devloop-testenv", "default/api-crc-testing:6443/kubeadmin",
])
def test_local_cluster_contexts_are_recognised(context):
    assert is_local(context)
    assert refusal(context, ()) == ""


@pytest.mark.parametrize("context", [
    "gke_team_us-central1_prod", "arn:aws:eks:eu-west-1:1:cluster/prod", "staging",
    "kindly-prod", "my-minikube-in-the-cloud",
])
def test_other_contexts_are_refused_with_the_line_to_add(context):
    message = refusal(context, ())
    assert message.startswith(f"Stop! {context!r} might be production.")
    assert f"allow_k8s_contexts('{context}')" in message
    assert "(" not in message.replace(f"allow_k8s_contexts('{context}')", "")


def test_a_listed_context_is_allowed():
    assert refusal("staging", ("prod", "staging")) == ""
    assert refusal("staging", ("prod",)) != ""
