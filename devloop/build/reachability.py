"""Are the image pipeline's parts there? Quick probes of the Docker engine and a registry.

A build or push finds out late (and a push retries for a while) that the engine or the
registry is gone; these probes say so within seconds, and say when they are back, so a
change that could not be pushed is tried again at once. Each returns '' when the part
answers, else one short line saying why not.
"""

from __future__ import annotations

import asyncio
import socket

# Connect/read timeout of one probe: a local engine or registry answers in milliseconds.
PROBE_TIMEOUT_SECONDS = 2


def _docker_blocking() -> str:
    import docker  # loaded on first use: see docker_builder.default_api_client
    from docker.utils import kwargs_from_env

    try:
        client = docker.APIClient(version="auto", timeout=PROBE_TIMEOUT_SECONDS,
                                  **kwargs_from_env())
    except Exception as e:  # the SDK raises DockerException, requests' and OS errors
        return f"cannot reach the Docker engine: {_first_line(e)}"
    try:
        client.ping()
    except Exception as e:  # idem
        return f"the Docker engine does not answer: {_first_line(e)}"
    finally:
        client.close()
    return ""


def _first_line(error: BaseException) -> str:
    """The reason in one line: the OS's ("connection refused") when there is one."""
    text = str(error).strip()
    for reason in ("Connection refused", "No such file or directory", "Permission denied",
                   "timed out"):
        if reason in text:
            return reason.lower()
    lines = text.splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= 200 else line[:199] + "\u2026"


def registry_address(host: str) -> tuple[str, int]:
    """(host, port) a registry named `host` ("localhost:5000", "registry.example.com")
    listens on: its port, else 443 (registries other than local ones speak TLS)."""
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    if name and port.isdigit():
        return name, int(port)
    return host, 443


def _registry_blocking(host: str) -> str:
    address = registry_address(host)
    try:
        with socket.create_connection(address, timeout=PROBE_TIMEOUT_SECONDS):
            return ""
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        return f"cannot reach the registry {host}: {reason}"


async def docker_problem() -> str:
    """'' when the Docker engine answers a ping, else why not."""
    return await asyncio.to_thread(_docker_blocking)


async def registry_problem(host: str) -> str:
    """'' when the registry accepts a connection, else why not (a TCP connection: its
    TLS and credentials are the push's to check and to explain)."""
    return await asyncio.to_thread(_registry_blocking, host)
