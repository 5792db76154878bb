"""Which kube contexts devloop deploys to without asking: local clusters, or ones allowed.

Like Tilt, devloop refuses to deploy to a context that is not a known local cluster unless
the Tiltfile lists it in `allow_k8s_contexts`, so a stale current context never sends a
developer's work to production. Local clusters are recognised by the context names their
tools create. The test environment (`scripts/testenv`) names its context `devloop-testenv`;
the `devloop-` prefix counts as local the way kind's `kind-` does.
"""

from __future__ import annotations

# Context names that local cluster tools create, exactly.
LOCAL_NAMES = frozenset({
    "minikube", "docker-desktop", "docker-for-desktop", "microk8s", "rancher-desktop",
    "orbstack", "colima", "crc-admin", "crc-developer",
})
# Prefixes of the context names they create (kind-<cluster>, k3d-<cluster>...).
LOCAL_PREFIXES = ("kind-", "k3d-", "krucible-", "colima-", "devloop-")


def is_local(context: str) -> bool:
    if context in LOCAL_NAMES or context.startswith(LOCAL_PREFIXES):
        return True
    # CodeReady Containers names its contexts after the API server: .../api-crc-testing:6443/...
    return "api-crc-testing" in context


def refusal(context: str, allowed: tuple[str, ...]) -> str:
    """Why deploying to `context` is refused, or '' when it is allowed."""
    if is_local(context) or context in allowed:
        return ""
    return (f"Stop! {context!r} might be production.\n"
            "If you're sure you want to deploy there, add:\n"
            f"    allow_k8s_contexts('{context}')\n"
            "to your Tiltfile. Otherwise, switch kube contexts and run devloop again.")
