"""Start-up: the cluster connection's modules load while the Tiltfile is evaluated.

The first evaluation runs in a child process, and this process only waits for it.
devloop's cluster code (its Kubernetes transport on urllib3 and websocket-client, the
build and deploy adapters) then takes about 0.2 s to import on the way to the first
update; the Docker SDK waits for the first image build. When the main Tiltfile names a
Kubernetes call, these modules are imported in a thread during the evaluation instead.
Otherwise (a local-only project, or one whose Kubernetes calls are all in files it loads)
they are imported after the evaluation, as before, and only when the plan needs a
cluster: a local-only daemon never loads them. A wrong guess costs time or memory, never a
different result.
"""

from __future__ import annotations

import asyncio
import importlib
import re
from pathlib import Path
from types import ModuleType

from devloop.model.background import spawn

CLUSTER_MODULE = "devloop.engine.cluster"
_KUBERNETES_CALL = re.compile(
    r"\b(k8s_yaml|k8s_resource|k8s_custom_deploy|helm|kustomize)\s*\(")


def names_kubernetes(tiltfile: str) -> bool:
    """Whether the Tiltfile's own text calls a Kubernetes function."""
    try:
        text = Path(tiltfile).read_text(errors="replace")
    except OSError:
        return False
    return _KUBERNETES_CALL.search(text) is not None


def preload_cluster(tiltfile: str) -> asyncio.Future[ModuleType] | None:
    """Import the cluster modules in a thread when the Tiltfile names Kubernetes; the
    caller awaits the future before it imports them itself. Not `handled`: the caller
    awaits it only when the plan needs a cluster, so a failure is logged as well."""
    if not names_kubernetes(tiltfile):
        return None
    return spawn(asyncio.to_thread(importlib.import_module, CLUSTER_MODULE),
                 name="preload cluster modules")
