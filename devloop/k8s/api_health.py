"""Is the cluster there? Quick health probes of the API server and of the kubelets.

Ordinary API calls wait up to a minute, and an API server whose etcd is gone still
accepts connections and keeps its watches open without a word: neither says the cluster
is in trouble. These probes do, in a couple of seconds: the API server's `/readyz`
(which checks etcd and its own controllers) and each kubelet, asked for an empty piece of
a log of a pod on its node (logs, exec and port-forwards go through the kubelet; its
`/healthz` through the node proxy is refused for loopback node addresses, as on a local
cluster). Each returns '' when the part is healthy, else one short line saying why not.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

import urllib3

from devloop.k8s.errors import KubeError

if TYPE_CHECKING:
    from devloop.k8s.client import KubeClient

# Connect and read timeout of one probe: a healthy local API server answers in
# milliseconds, a loaded one within a second. Without etcd, /readyz answers only after its
# etcd check gave up (the API server's --etcd-healthcheck-timeout, 2 s by default), so the
# read waits a little longer than that, and a late answer is taken by the monitor's next round.
PROBE_TIMEOUT_SECONDS = 2.8
# A probe's answer is cut to this many characters.
MAX_CHARS = 200
# The OS's reason in a connection error: "[Errno 111] Connection refused".
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()\]]+)")
# The API server's failure to reach a kubelet: "dial tcp 127.0.0.1:10250: connect: ...".
_DIAL = re.compile(r"dial tcp[46]? \S+: connect: [a-z ]+")


class NotAllowed(Exception):
    """The credentials may not use this probe (no RBAC right to the node proxy): the part
    cannot be watched this way, which says nothing about its health."""


def readyz_failures(body: str) -> list[str]:
    """The failed checks of a verbose /readyz or /livez answer ("[-]etcd failed: ...")."""
    return [line[3:].split(":")[0].strip().removesuffix(" failed")
            for line in body.splitlines() if line.startswith("[-]")]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "\u2026"


def _get_text(kube: KubeClient, path: str, what: str) -> tuple[int, str]:
    """(HTTP status, body) of a plain-text GET (blocking); status 0: no answer."""
    try:
        resp = kube.request("GET", path, query=[("verbose", "1")], stream=True, what=what,
                            timeout=(PROBE_TIMEOUT_SECONDS, PROBE_TIMEOUT_SECONDS))
    except KubeError as e:
        return e.status or 0, e.message
    try:
        return int(resp.status), resp.read().decode(errors="replace")
    except (urllib3.exceptions.HTTPError, OSError) as e:
        return 0, f"{what}: connection lost: {e}"
    finally:
        resp.release_conn()


def _api_server_blocking(kube: KubeClient) -> str:
    status, body = _get_text(kube, "/readyz", "API server")
    if status == 200:
        return _read_problem(kube)
    if status == 0:
        return f"cannot reach the API server at {kube.configuration.host}: {_reason(body)}"
    failed = readyz_failures(body)
    if failed:
        return _short(f"the API server is not ready: {', '.join(failed)} failed")
    return _short(f"the API server is not ready (HTTP {status}): {body}")


def _read_problem(kube: KubeClient) -> str:
    """'' when the API server can read (one pod of the session's namespace: a read that
    goes to etcd); /readyz says "ok" for a few seconds after etcd is gone."""
    try:
        kube.request("GET", f"/api/v1/namespaces/{kube.namespace}/pods",
                     query=[("limit", 1)], what="API server read",
                     timeout=(PROBE_TIMEOUT_SECONDS, PROBE_TIMEOUT_SECONDS))
    except KubeError as e:
        if e.status in (401, 403, 404):
            return ""  # these credentials may not list pods there: nothing to say
        if not e.status:
            return f"the API server cannot read its storage (etcd): {_reason(e.message)}"
        return _short(f"the API server cannot read: {e.message}")
    return ""


def _reason(text: str) -> str:
    """Why a connection failed, out of urllib3's long story ("HTTPSConnectionPool(...):
    Max retries exceeded ... [Errno 111] Connection refused"))."""
    if "timed out" in text.lower() or "timeout" in text.lower():
        return f"no answer in {PROBE_TIMEOUT_SECONDS:g} s"
    found = _ERRNO.search(text)
    if found is not None:
        return found.group(1).strip().lower()
    return _short(text)


def _kubelet_blocking(kube: KubeClient, node: str, namespace: str, pod: str,
                     container: str) -> str:
    resp_status, body = _get_log_head(kube, namespace, pod, container)
    if resp_status == 200:
        return ""
    if resp_status in (401, 403):
        raise NotAllowed(body)
    if resp_status in (400, 404):
        return ""  # the pod or its container is gone: not the kubelet's fault
    if resp_status == 0 and "cannot reach the API server" in body:
        return ""  # the API server's own probe says so; nothing to say of the kubelet
    dial = _DIAL.search(body)
    if "error dialing backend" in body or dial is not None:
        reason = dial.group(0) if dial is not None else body.split(
            "error dialing backend:")[-1].strip()
        return _short(f"the kubelet of node {node} is unreachable: {reason}")
    if resp_status == 0:
        return _short(f"the kubelet of node {node} does not answer: {body}")
    return _short(f"the kubelet of node {node} is not healthy (HTTP {resp_status}): {body}")


def _get_log_head(kube: KubeClient, namespace: str, pod: str,
                  container: str) -> tuple[int, str]:
    """(HTTP status, body) of an empty log read (tailLines=0) through the kubelet."""
    try:
        resp = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                            query=[("container", container), ("tailLines", 0),
                                   ("limitBytes", 1)], stream=True,
                            what=f"log of {namespace}/{pod}",
                            timeout=(PROBE_TIMEOUT_SECONDS, PROBE_TIMEOUT_SECONDS))
    except KubeError as e:
        return e.status or 0, e.message
    try:
        resp.read()
        return int(resp.status), ""
    except (urllib3.exceptions.HTTPError, OSError) as e:
        return 0, f"connection lost: {e}"
    finally:
        resp.release_conn()


async def api_server_problem(kube: KubeClient) -> str:
    """'' when the API server is ready (etcd included), else why not."""
    return await asyncio.to_thread(_api_server_blocking, kube)


async def kubelet_problem(kube: KubeClient, node: str, pod: tuple[str, str, str]) -> str:
    """'' when the node's kubelet serves a read of the log of `pod` (namespace, name,
    container) on it, else why not; raises NotAllowed when these credentials may not."""
    return await asyncio.to_thread(_kubelet_blocking, kube, node, *pod)
