"""Exec and port-forward websockets open the very URL, query and headers that the generated
CoreV1Api methods would, without importing those (kubernetes.stream's own path)."""

from __future__ import annotations

import functools
import importlib
from typing import Any

from kubernetes.client import ApiClient, Configuration, CoreV1Api
from kubernetes.stream import ws_client

from devloop.k8s import websocket

stream_module = importlib.import_module("kubernetes.stream.stream")


def client() -> ApiClient:
    configuration = Configuration()
    configuration.host = "https://127.0.0.1:6443"
    configuration.api_key = {"authorization": "Bearer TOKEN"}
    return ApiClient(configuration)


def recorder(opened: list[tuple[Any, ...]]) -> Any:
    def record(configuration: Any, method: str, url: str, **kwargs: Any) -> str:
        opened.append((method, url, kwargs.get("headers"), kwargs.get("binary"),
                       kwargs.get("_preload_content")))
        return "socket"

    return record


def test_exec_opens_what_the_generated_method_opens(monkeypatch):
    opened: list[tuple[Any, ...]] = []
    monkeypatch.setattr(ws_client, "websocket_call", recorder(opened))
    api = client()
    generated = functools.partial(stream_module._websocket_request, ws_client.websocket_call,
                                  None)
    argv = ["sh", "-c", "echo a b && cat > /tmp/x"]
    generated(CoreV1Api(api).connect_get_namespaced_pod_exec, "web-1", "shop", container="app",
              command=argv, stdin=True, stdout=True, stderr=True, tty=False,
              _preload_content=False, binary=True)
    assert websocket.open_exec(api, "shop", "web-1", "app", argv, stdin=True) == "socket"
    assert opened[0] == opened[1]
    assert "command=sh&command=-c&command=echo%20a%20b%20%26%26%20cat" in opened[1][1]


def test_portforward_opens_what_the_generated_method_opens(monkeypatch):
    opened: list[tuple[Any, ...]] = []
    monkeypatch.setattr(ws_client, "portforward_call", recorder(opened))
    api = client()
    generated = functools.partial(stream_module._websocket_request,
                                  ws_client.portforward_call, {"_preload_content": False})
    generated(CoreV1Api(api).connect_get_namespaced_pod_portforward, "web-1", "shop",
              ports="8080")
    assert websocket.open_portforward(api, "shop", "web-1", 8080) == "socket"
    assert opened[0][:3] == opened[1][:3]
    assert opened[1][1].endswith("/api/v1/namespaces/shop/pods/web-1/portforward?ports=8080")
