"""Pushing built images to a registry: credentials, retries, and errors that say what to do.

A push goes through the Docker engine (`docker push`), which already has the image and
speaks the registry protocol: it asks the registry which layers it has and uploads only
the others, so a rebuild that changed one layer sends one layer. The engine's progress
stream says, per layer, "Layer already exists" or how many bytes it read while uploading;
the log line after each push sums that up.

Credentials come from the Docker config as `docker push` finds them (see
`credentials.py`) and go to the engine in the SDK's `auth_config`; they are never logged.

Errors are classified from the engine's message (`classify`): temporary ones (connection
refused or reset, timeouts, 5xx, rate limits) are retried with exponential backoff
(`PushRetrySettings`); auth, TLS and quota refusals are not retried, and their message says
why and what to do.
"""

from __future__ import annotations

import asyncio
import enum
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from devloop.build import registry as reg
from devloop.build.credentials import (
    Credentials,
    CredentialsError,
    config_path,
    find_credentials,
    registry_host,
)
from devloop.build.docker_builder import BuiltImage, PushError, default_api_client

LogFn = Callable[[str], None]


class PushFailure(enum.Enum):
    """Why a push failed, as far as the engine's message tells."""

    TRANSIENT = "transient"      # worth retrying: the registry or the network hiccuped
    RATE_LIMITED = "rate-limited"  # 429: retried, slower
    AUTH = "auth"                # credentials missing, wrong, or without push rights
    TLS = "tls"                  # certificate not trusted, or HTTP/HTTPS mismatch
    QUOTA = "quota"              # storage full or quota exceeded
    NOT_FOUND = "not-found"      # the local image is gone
    OTHER = "other"


# Checked in this order: the first match wins. Patterns over the lower-cased message;
# status codes only as whole words (a digest may contain "401").
_RULES: tuple[tuple[PushFailure, re.Pattern[str]], ...] = tuple(
    (failure, re.compile("|".join(patterns))) for failure, patterns in (
        (PushFailure.TLS, (r"x509:", r"certificate", r"\btls: ",
                           r"server gave http response to https")),
        (PushFailure.QUOTA, (r"quota", r"insufficient storage", r"no space left",
                             r"request entity too large", r"storage limit", r"\b507\b",
                             r"\b413\b")),
        (PushFailure.RATE_LIMITED, (r"toomanyrequests", r"too many requests", r"\b429\b")),
        (PushFailure.AUTH, (r"unauthorized", r"authentication required",
                            r"no basic auth credentials", r"access to the resource is denied",
                            r"\bdenied:", r"forbidden", r"\b401\b", r"\b403\b",
                            r"incorrect username or password")),
        (PushFailure.NOT_FOUND, (r"an image does not exist locally", r"no such image",
                                 r"tag does not exist")),
        (PushFailure.TRANSIENT, (r"connection refused", r"connection reset", r"broken pipe",
                                 r"i/o timeout", r"timeout", r"timed out", r"\beof\b",
                                 r"no route to host", r"network is unreachable",
                                 r"bad gateway", r"service unavailable", r"gateway timeout",
                                 r"internal server error", r"temporarily unavailable",
                                 r"connection lost", r"request canceled",
                                 r"blob upload unknown", r"\b50[0234]\b")),
    ))
_RETRIED = frozenset({PushFailure.TRANSIENT, PushFailure.RATE_LIMITED})


def classify(message: str) -> PushFailure:
    text = message.lower()
    for failure, pattern in _RULES:
        if pattern.search(text):
            return failure
    return PushFailure.OTHER


@dataclass(frozen=True)
class PushRetrySettings:
    """Retries of a push that failed for a temporary reason.

    Four attempts with 1 s, 2 s, 4 s between them ride out a registry restart or a proxy
    blip (about 7 s) without making a real outage wait long; a rate-limited registry gets
    four times the delay. These are judgement, not measurements: a registry coming back
    usually takes seconds, and a developer would rather see the error than wait a minute."""

    attempts: int = 4
    first_delay: float = 1.0
    max_delay: float = 8.0
    rate_limited_factor: float = 4.0

    def delay(self, attempt: int, failure: PushFailure) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        base: float = min(self.first_delay * 2.0 ** (attempt - 1), self.max_delay)
        return base * (self.rate_limited_factor if failure is PushFailure.RATE_LIMITED else 1.0)


@dataclass
class PushStats:
    """What one push sent, from the engine's progress stream."""

    layers_pushed: int = 0
    layers_existing: int = 0
    layers_mounted: int = 0
    bytes_read: int = 0
    digest: str = ""
    _progress: dict[str, int] = field(default_factory=dict)

    def observe(self, item: dict[str, Any]) -> None:
        status = str(item.get("status", ""))
        layer = str(item.get("id", ""))
        detail = item.get("progressDetail")
        if status == "Pushing" and isinstance(detail, dict):
            current = detail.get("current")
            if isinstance(current, int):
                self._progress[layer] = max(current, self._progress.get(layer, 0))
        elif status == "Pushed":
            self.layers_pushed += 1
        elif status == "Layer already exists":
            self.layers_existing += 1
        elif status.startswith("Mounted from"):
            self.layers_mounted += 1
        aux = item.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
            self.digest = aux["Digest"]

    def finish(self) -> None:
        self.bytes_read = sum(self._progress.values())

    def summary(self) -> str:
        total = self.layers_pushed + self.layers_existing + self.layers_mounted
        text = (f"sent {self.layers_pushed} of {total} layers "
                f"({human_bytes(self.bytes_read)} of layer content, compressed on the wire)")
        if self.layers_existing:
            text += f", {self.layers_existing} already in the registry"
        if self.layers_mounted:
            text += f", {self.layers_mounted} mounted from another repository"
        return text


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"


@dataclass(frozen=True)
class PushResult:
    ref: str
    stats: PushStats
    attempts: int


class PushApi(Protocol):
    """The part of docker.APIClient a push needs (a fake implements the same)."""

    def tag(self, image: str, repository: str, tag: str | None = None, force: bool = False
            ) -> bool: ...

    def push(self, repository: str, tag: str | None = None, stream: bool = False,
             auth_config: dict[str, str] | None = None, decode: bool = False
             ) -> Iterator[dict[str, Any]]: ...


class CredentialSource(Protocol):
    def __call__(self, host: str) -> Credentials | None: ...


def _lookup(host: str) -> Credentials | None:
    return find_credentials(host)


def explain(failure: PushFailure, message: str, *, ref: str, host: str,
            credentials: Credentials | None, attempts: int) -> str:
    """A push error for a person: what failed, why, and what to do."""
    head = f"pushing {ref} failed: {message.strip()}"
    if failure is PushFailure.AUTH:
        if credentials is None:
            return (f"{head}\nThe registry {host} wants credentials and the Docker config "
                    f"({config_path()}) has none for it. Run `docker login {host}` (or set "
                    "up its credential helper), then save a file to rebuild.")
        return (f"{head}\nThe registry {host} refused the credentials from "
                f"{credentials.source}: they are wrong, expired, or may not push to this "
                f"repository. Run `docker login {host}` again, then save a file to rebuild.")
    if failure is PushFailure.TLS:
        ca = f"/etc/docker/certs.d/{host}/ca.crt"
        where = (f"{ca} exists, so the certificate does not match that CA or {host}"
                 if os.path.exists(ca) else f"there is no {ca}")
        return (f"{head}\nThe Docker engine does not trust {host}'s certificate ({where}). "
                f"If the registry uses its own CA, put the CA certificate at {ca} (the engine "
                "reads it at each push, no restart needed); the cluster's nodes need it too "
                "(containerd: `ca` in certs.d/<host>/hosts.toml).")
    if failure is PushFailure.QUOTA:
        return (f"{head}\nThe registry {host} is out of space or over its quota. Delete old "
                "tags or images there, or raise the quota, then save a file to rebuild.")
    if failure is PushFailure.NOT_FOUND:
        return f"{head}\nThe built image is gone from the Docker engine; rebuild it."
    if failure in _RETRIED:
        return (f"{head}\nGave up after {attempts} attempts. Is the registry {host} up and "
                "reachable from this machine? devloop pushes again on the next change.")
    return head


class Pusher:
    """Pushes built images through the Docker engine (blocking calls run in a thread)."""

    def __init__(self, api_factory: Callable[[], PushApi] = default_api_client, *,
                 credentials: CredentialSource = _lookup,
                 retry: PushRetrySettings | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._api_factory = api_factory
        self._api: PushApi | None = None
        self._credentials = credentials
        self._retry = retry or PushRetrySettings()
        self._sleep = sleep
        self._found: dict[str, Credentials | None] = {}
        self._said: set[str] = set()  # hosts whose credentials' source was logged

    def credentials_for(self, host: str) -> Credentials | None:
        """The Docker config's credentials for `host`, looked up once per session (a
        helper may mint a token each time). Blocking."""
        if host not in self._found:
            self._found[host] = self._credentials(host)
        return self._found[host]

    def known_credentials(self, host: str) -> Credentials | None:
        """The credentials the last push to `host` used (no lookup; None if none yet)."""
        return self._found.get(host)

    def forget(self, host: str) -> None:
        """Look credentials up again next time (after an auth refusal: the developer may
        have run `docker login` since)."""
        self._found.pop(host, None)
        self._said.discard(host)

    async def push(self, image: BuiltImage, registry: reg.Registry | None, *,
                   log: LogFn) -> PushResult:
        loop = asyncio.get_running_loop()

        def emit(line: str) -> None:
            loop.call_soon_threadsafe(log, line)

        return await asyncio.to_thread(self.push_blocking, image, registry, emit)

    def push_blocking(self, image: BuiltImage, registry: reg.Registry | None,
                      emit: LogFn) -> PushResult:
        repo = reg.local_name(image.repo, registry) if registry else image.repo
        ref = f"{repo}:{image.tag}"
        host = registry_host(repo)
        try:
            credentials = self.credentials_for(host)
        except CredentialsError as exc:
            raise PushError(f"pushing {ref}: {exc}") from None
        if credentials is not None and host not in self._said:
            self._said.add(host)
            emit(f"Using credentials for {host} from {credentials.source}")
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                stats = self._push_once(image, repo, credentials, emit)
            except _Failed as exc:
                failure = classify(exc.message)
                if failure is PushFailure.AUTH:
                    self.forget(host)
                if failure in _RETRIED and attempt < self._retry.attempts:
                    delay = self._retry.delay(attempt, failure)
                    emit(f"Push of {ref} failed ({failure.value}: {exc.message.strip()}); "
                         f"retrying in {delay:.0f}s (attempt {attempt + 1} of "
                         f"{self._retry.attempts})")
                    self._sleep(delay)
                    continue
                raise PushError(explain(failure, exc.message, ref=ref, host=host,
                                        credentials=credentials, attempts=attempt),
                                temporary=failure in _RETRIED) from None
            emit(f"Pushed {ref} in {time.monotonic() - started:.1f}s: {stats.summary()}")
            return PushResult(ref=ref, stats=stats, attempts=attempt)

    def _client(self) -> PushApi:
        import docker.errors  # loaded on first use: see docker_builder.default_api_client

        if self._api is None:
            try:
                self._api = self._api_factory()
            except docker.errors.DockerException as exc:
                raise PushError(f"cannot reach the Docker engine: {exc}",
                                temporary=True) from exc
        return self._api

    def _push_once(self, image: BuiltImage, repo: str, credentials: Credentials | None,
                   emit: LogFn) -> PushStats:
        import docker.errors  # loaded on first use: see docker_builder.default_api_client

        api = self._client()
        stats = PushStats()
        last_status: dict[str, str] = {}
        try:
            if repo != image.repo:
                api.tag(image.image_id, repo, image.tag)
            stream = api.push(repo, tag=image.tag, stream=True, decode=True,
                              auth_config=credentials.auth_config() if credentials else None)
            for item in stream:
                if "error" in item:
                    detail = item.get("errorDetail")
                    message = (detail.get("message") if isinstance(detail, dict) else None
                               ) or item["error"]
                    raise _Failed(str(message))
                stats.observe(item)
                status = str(item.get("status", ""))
                layer = str(item.get("id", ""))
                # Progress ticks repeat the same status many times a second; log changes.
                if status and last_status.get(layer) != status:
                    last_status[layer] = status
                    emit(f"{layer}: {status}" if layer else status)
        except docker.errors.APIError as exc:
            raise _Failed(str(exc.explanation or exc)) from None
        except (docker.errors.DockerException, OSError) as exc:
            raise _Failed(f"connection to the Docker engine lost: {exc}") from None
        stats.finish()
        return stats


class _Failed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
