"""Exec and port-forward websockets without the generated API classes.

`kubernetes.stream` opens these websockets through a method of the generated `CoreV1Api`;
importing that class loads the pydantic models of every type it mentions: about 20 MB of
the daemon's memory and 0.4 s of its start-up, for two URLs. Here the URL is built the way
the client builds any request (`ApiClient.param_serialize`, which adds the credentials, as
for `KubeClient.request`) and handed to the same websocket transport (`ws_client`), with the
query the generated methods send.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client import ApiClient
from kubernetes.stream import ws_client


def _url(api: ApiClient, path: str, query: list[tuple[str, Any]]) -> tuple[str, dict[str, str]]:
    _, url, headers, _, _ = api.param_serialize(
        "GET", path, query_params=query, header_params={"Accept": "*/*"},
        auth_settings=["BearerToken"], collection_formats={"command": "multi"})
    return str(url), dict(headers)


def open_exec(api: ApiClient, namespace: str, pod: str, container: str, argv: list[str], *,
              stdin: bool) -> Any:
    """A `ws_client.WSClient` running `argv` in the container (stdout and stderr on,
    binary, no tty), as `stream(connect_get_namespaced_pod_exec, ...,
    _preload_content=False, binary=True)` returns it. Raises ApiException."""
    url, headers = _url(api, f"/api/v1/namespaces/{namespace}/pods/{pod}/exec", [
        ("command", argv), ("container", container), ("stderr", True), ("stdin", stdin),
        ("stdout", True), ("tty", False)])
    return ws_client.websocket_call(api.configuration, "GET", url, headers=headers,
                                    _preload_content=False, binary=True)


def open_portforward(api: ApiClient, namespace: str, pod: str, port: int) -> Any:
    """A `ws_client.PortForward` to the pod's `port`, as `portforward(
    connect_get_namespaced_pod_portforward, ...)` returns it. Raises ApiException."""
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/portforward"
    url, headers = _url(api, path, [("ports", str(port))])
    return ws_client.portforward_call(api.configuration, "GET", url, headers=headers,
                                      _preload_content=False)
