"""Image pull secrets for a registry that needs credentials, in the session's namespace only.

When the registry images are pushed to needs a login, the cluster's nodes need one to pull
them too. The session makes one `kubernetes.io/dockerconfigjson` Secret from the same
credentials the push used, in its own namespace (never elsewhere: on a shared cluster other
namespaces are other people's), and adds it to `imagePullSecrets` of every pod spec it
deploys there whose images come from that registry. The Secret carries devloop's owner
label plus `devloop.dev/pull-secret`, so `down` finds and deletes it. Its content is never
logged.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable
from typing import Any, Protocol

from devloop.k8s.images import pod_template

OWNER_LABEL = "app.kubernetes.io/managed-by"
OWNER_VALUE = "devloop"
PULL_SECRET_LABEL = "devloop.dev/pull-secret"
SECRET_TYPE = "kubernetes.io/dockerconfigjson"

class SecretApi(Protocol):
    async def list_by_label(self, label_selector: str, kinds: Any = ..., *,
                            namespace: str = "") -> list[dict[str, Any]]: ...

    async def delete(self, obj_ref: Any, *, propagation: str = "Background") -> bool: ...


def secret_name(host: str) -> str:
    """`devloop-registry-<host>` as a DNS-1123 name (`registry.example.com:5000` ->
    `devloop-registry-registry.example.com-5000`)."""
    text = re.sub(r"[^a-z0-9.-]+", "-", host.lower()).strip("-.")
    return ("devloop-registry-" + text)[:253].rstrip("-.")


def pull_secret_manifest(name: str, namespace: str, dockerconfigjson: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {OWNER_LABEL: OWNER_VALUE, PULL_SECRET_LABEL: "true"}},
        "data": {".dockerconfigjson": base64.b64encode(dockerconfigjson.encode()).decode()},
    }


def _pod_spec(manifest: dict[str, Any]) -> dict[str, Any] | None:
    template = pod_template(manifest)
    return template["spec"] if template is not None else None


def _images(spec: dict[str, Any]) -> list[str]:
    out = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict) and isinstance(container.get("image"), str):
                out.append(container["image"])
    return out


def pulls_from(image: str, hosts: tuple[str, ...]) -> bool:
    return any(image.startswith(host + "/") for host in hosts)


def attach(manifest: dict[str, Any], name: str, *, hosts: tuple[str, ...],
           namespace: str) -> dict[str, Any]:
    """`manifest` with the pull secret `name` in its pod spec's imagePullSecrets when it
    deploys into `namespace` (the Secret's) an image from one of `hosts`; else unchanged."""
    target_namespace = (manifest.get("metadata") or {}).get("namespace") or namespace
    spec = _pod_spec(manifest)
    if target_namespace != namespace or spec is None or not any(
            pulls_from(image, hosts) for image in _images(spec)):
        return manifest
    if any(isinstance(s, dict) and s.get("name") == name
           for s in spec.get("imagePullSecrets") or []):
        return manifest
    out = copy.deepcopy(manifest)
    spec = _pod_spec(out)
    assert spec is not None
    spec["imagePullSecrets"] = [*(spec.get("imagePullSecrets") or []), {"name": name}]
    return out


async def delete_pull_secrets(kube: SecretApi, namespace: str,
                              say: Callable[[str], None]) -> list[dict[str, Any]]:
    """`down`: delete the pull secrets devloop made in `namespace`; returns them."""
    found = await kube.list_by_label(f"{OWNER_LABEL}={OWNER_VALUE},{PULL_SECRET_LABEL}=true",
                                     (("v1", "Secret"),), namespace=namespace)
    deleted = []
    for secret in found:
        name = str((secret.get("metadata") or {}).get("name", ""))
        manifest = {"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": name, "namespace": namespace}}
        if await kube.delete(manifest):
            say(f"Deleted Secret/{name} (image pull secret)")
            deleted.append(manifest)
    return deleted
