"""One devloop session per namespace: a Lease in the namespace names the session holding it.

Two sessions deploying into one namespace overwrite each other's objects, and one's `down`
deletes what the other runs. So a session (`up`, `ci`) takes the Lease `devloop-session` in
its namespace before deploying, as client-go's leader election does: it creates the Lease,
or takes it over when the holder is gone, and renews it every `renew_seconds`. A second
session finds a live holder and is refused with a message naming it (user, host, pid, since
when); `DEVLOOP_SHARE_NAMESPACE=1` turns the refusal into a warning for people who share a
namespace on purpose. The Lease is deleted when the session ends; a session that died
without ending (SIGKILL, a lost laptop) leaves a Lease that expires `duration_seconds` after
its last renewal, or at once for a session on this machine whose process is gone.

A holder's liveness is judged from its `renewTime` against this machine's clock; clocks of
developer machines are assumed to agree within the lease duration (NTP does better).
Updates use the Lease's resourceVersion, so of two sessions taking over a stale Lease at
once exactly one wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from devloop.k8s.errors import KubeError
from devloop.model.background import spawn

LEASE_NAME = "devloop-session"
LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
OWNER_LABEL = "app.kubernetes.io/managed-by"
ANNOTATION_PREFIX = "devloop.dev/"
SHARE_ENV = "DEVLOOP_SHARE_NAMESPACE"

LogFn = Callable[[str], None]


@dataclass(frozen=True)
class LockSettings:
    """How long a Lease lives without renewal, and how often it is renewed.

    30 s mirrors client-go's leader-election defaults (15 s lease, 2 s retry) scaled for a
    developer tool: a crashed session on another machine blocks its namespace for at most
    half a minute, and three renewals may fail (a laptop's Wi-Fi blip) before it expires."""

    duration_seconds: int = 30
    renew_seconds: float = 10.0


class LeaseApi(Protocol):
    """The part of `KubeClient` the lock needs (blocking; a fake implements the same)."""

    def request(self, method: str, path: str, *, body: Any = None, content_type: str = "",
                what: str = "") -> Any: ...


@dataclass(frozen=True)
class Holder:
    """Who holds (or wants) a namespace."""

    user: str
    host: str
    pid: int
    session: str
    tiltfile: str = ""

    @classmethod
    def this_process(cls, tiltfile: str = "") -> Holder:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return cls(user=user, host=socket.gethostname(), pid=os.getpid(),
                   session=uuid.uuid4().hex[:12], tiltfile=os.path.abspath(tiltfile)
                   if tiltfile else "")

    @property
    def identity(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid} session {self.session}"

    def annotations(self) -> dict[str, str]:
        return {ANNOTATION_PREFIX + "user": self.user, ANNOTATION_PREFIX + "host": self.host,
                ANNOTATION_PREFIX + "pid": str(self.pid),
                ANNOTATION_PREFIX + "session": self.session,
                ANNOTATION_PREFIX + "tiltfile": self.tiltfile}

    @classmethod
    def of(cls, lease: dict[str, Any]) -> Holder:
        notes = (lease.get("metadata") or {}).get("annotations") or {}

        def note(key: str) -> str:
            return str(notes.get(ANNOTATION_PREFIX + key, ""))

        try:
            pid = int(note("pid") or 0)
        except ValueError:
            pid = 0
        return cls(user=note("user"), host=note("host"), pid=pid, session=note("session"),
                   tiltfile=note("tiltfile"))


class NamespaceBusy(Exception):
    """Another live session holds the namespace."""


def _now() -> datetime:
    return datetime.now(UTC)


def micro_time(when: datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 with microseconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _process_gone(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def stale_reason(lease: dict[str, Any], *, now: datetime, this_host: str) -> str:
    """Why the Lease's holder is gone ('' when it looks alive)."""
    spec = lease.get("spec") or {}
    if not spec.get("holderIdentity"):
        return "it was released"
    holder = Holder.of(lease)
    if holder.host == this_host and _process_gone(holder.pid):
        return f"process {holder.pid} on this machine has exited"
    renewed = parse_time(str(spec.get("renewTime") or spec.get("acquireTime") or ""))
    duration = int(spec.get("leaseDurationSeconds") or LockSettings().duration_seconds)
    if renewed is None:
        return "it was never renewed"
    if now - renewed > timedelta(seconds=duration):
        return f"it was last renewed {int((now - renewed).total_seconds())}s ago"
    return ""


def describe_holder(lease: dict[str, Any], *, now: datetime) -> str:
    holder = Holder.of(lease)
    spec = lease.get("spec") or {}
    since = parse_time(str(spec.get("acquireTime") or ""))
    renewed = parse_time(str(spec.get("renewTime") or ""))
    parts = [f"{holder.user or '?'}@{holder.host or '?'} (pid {holder.pid or '?'}"]
    if holder.tiltfile:
        parts.append(f", Tiltfile {holder.tiltfile}")
    if since is not None:
        parts.append(f", since {since.strftime('%H:%M:%S UTC')}")
    if renewed is not None:
        parts.append(f", renewed {max(0, int((now - renewed).total_seconds()))}s ago")
    parts.append(")")
    return "".join(parts)


class SessionLock:
    """The Lease of one session in one namespace. `acquire`, then `start` renewing, then
    `release` at the end."""

    def __init__(self, api: LeaseApi, namespace: str, *, holder: Holder, log: LogFn,
                 settings: LockSettings | None = None,
                 clock: Callable[[], datetime] = _now) -> None:
        self.api = api
        self.namespace = namespace
        self.holder = holder
        self.settings = settings or LockSettings()
        self._log = log
        self._clock = clock
        self._resource_version = ""
        self._held = False
        self._task: asyncio.Task[None] | None = None
        self._acquired_at = ""
        self._transitions = 0

    @property
    def held(self) -> bool:
        return self._held

    def _path(self, name: str = "") -> str:
        base = LEASE_PATH.format(namespace=self.namespace)
        return f"{base}/{name}" if name else base

    def _body(self) -> dict[str, Any]:
        now = micro_time(self._clock())
        self._acquired_at = self._acquired_at or now
        meta: dict[str, Any] = {"name": LEASE_NAME, "namespace": self.namespace,
                                "labels": {OWNER_LABEL: "devloop"},
                                "annotations": self.holder.annotations()}
        if self._resource_version:
            meta["resourceVersion"] = self._resource_version
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": self.holder.identity,
                         "leaseDurationSeconds": self.settings.duration_seconds,
                         "acquireTime": self._acquired_at, "renewTime": now,
                         "leaseTransitions": self._transitions}}

    def _what(self) -> str:
        return f"Lease {self.namespace}/{LEASE_NAME}"

    def _get(self) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.api.request("GET", self._path(LEASE_NAME),
                                                     what=self._what())
            return found
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def acquire_blocking(self) -> None:
        """Take the namespace, or raise NamespaceBusy naming the live holder."""
        for _ in range(3):  # a lost create/update race is tried again with what won
            live = self._get()
            if live is None:
                self._resource_version = ""
                try:
                    created = self.api.request("POST", self._path(), body=self._body(),
                                               content_type="application/json",
                                               what=self._what())
                except KubeError as exc:
                    if exc.status == 409:
                        continue
                    raise
                self._took(created)
                return
            spec = live.get("spec") or {}
            if spec.get("holderIdentity") == self.holder.identity:
                self._took(live)
                return
            now = self._clock()
            why = stale_reason(live, now=now, this_host=self.holder.host)
            if not why:
                message = (f"namespace {self.namespace!r} is in use by another devloop "
                           f"session: {describe_holder(live, now=now)}. Two sessions in one "
                           "namespace overwrite each other's objects, and one's `down` "
                           "deletes the other's. Use a namespace of your own (devloop up "
                           "--namespace NAME, or the kube context's namespace), or stop that "
                           f"session. Its lock expires {self.settings.duration_seconds}s "
                           "after its last renewal if it died.")
                if os.environ.get(SHARE_ENV, "") not in ("", "0"):
                    self._log(f"WARNING: {message} ({SHARE_ENV} is set: going on anyway)")
                    return
                raise NamespaceBusy(message)
            self._log(f"Taking over the devloop session lock of namespace {self.namespace} "
                      f"from {describe_holder(live, now=now)}: {why}")
            self._resource_version = str((live.get("metadata") or {}).get("resourceVersion"))
            self._transitions = int(spec.get("leaseTransitions") or 0) + 1
            try:
                updated = self.api.request("PUT", self._path(LEASE_NAME), body=self._body(),
                                           content_type="application/json", what=self._what())
            except KubeError as exc:
                if exc.status in (404, 409):
                    continue
                raise
            self._took(updated)
            return
        raise NamespaceBusy(f"namespace {self.namespace!r}: another devloop session keeps "
                            "taking its lock at the same moment; try again")

    def _took(self, lease: Any) -> None:
        meta = (lease or {}).get("metadata") or {}
        self._resource_version = str(meta.get("resourceVersion") or "")
        self._acquired_at = str(((lease or {}).get("spec") or {}).get("acquireTime")
                                or self._acquired_at)
        self._held = True

    def renew_blocking(self) -> None:
        """Move renewTime forward. A Lease taken by someone else (after this session
        could not renew in time) is reported and not taken back."""
        if not self._held:
            return
        try:
            updated = self.api.request("PUT", self._path(LEASE_NAME), body=self._body(),
                                       content_type="application/json", what=self._what())
        except KubeError as exc:
            if exc.status not in (404, 409):
                raise
            live = self._get()
            owner = ((live or {}).get("spec") or {}).get("holderIdentity")
            if live is not None and owner and owner != self.holder.identity:
                self._held = False
                self._log(f"WARNING: the devloop session lock of namespace {self.namespace} "
                          f"was taken by {describe_holder(live, now=self._clock())}; both "
                          "sessions now deploy into it")
                return
            self._resource_version = str(((live or {}).get("metadata") or {})
                                         .get("resourceVersion") or "")
            updated = self.api.request(
                "POST" if live is None else "PUT",
                self._path() if live is None else self._path(LEASE_NAME),
                body=self._body(), content_type="application/json", what=self._what())
        self._took(updated)

    def release_blocking(self) -> None:
        """Delete the Lease if this session still holds it."""
        if not self._held:
            return
        self._held = False
        live = self._get()
        if live is None or (live.get("spec") or {}).get("holderIdentity") != \
                self.holder.identity:
            return
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {
            "resourceVersion": str((live.get("metadata") or {}).get("resourceVersion"))}}
        with contextlib.suppress(KubeError):
            self.api.request("DELETE", self._path(LEASE_NAME), body=body,
                             content_type="application/json", what=self._what())

    # -- async
    async def acquire(self) -> None:
        await asyncio.to_thread(self.acquire_blocking)

    def start(self) -> None:
        """Renew in the background until `release`."""
        if self._held and self._task is None:
            self._task = spawn(self._renew_forever(), name=f"session-lock {self.namespace}")

    async def _renew_forever(self) -> None:
        while self._held:
            await asyncio.sleep(self.settings.renew_seconds)
            try:
                await asyncio.to_thread(self.renew_blocking)
            except KubeError as exc:
                # Temporary trouble: the next renewal tries again; the Lease outlives a
                # few missed renewals.
                self._log(f"WARNING: could not renew the devloop session lock of namespace "
                          f"{self.namespace}: {exc}")

    async def release(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.release_blocking)


def lock_state(api: LeaseApi, namespace: str, *, now: datetime | None = None,
               this_host: str | None = None) -> tuple[dict[str, Any] | None, str]:
    """(the namespace's Lease or None, why it is stale or ''). Blocking."""
    try:
        live: dict[str, Any] | None = api.request(
            "GET", LEASE_PATH.format(namespace=namespace) + "/" + LEASE_NAME,
            what=f"Lease {namespace}/{LEASE_NAME}")
    except KubeError as exc:
        if exc.status in (403, 404):
            return None, ""
        raise
    if live is None:
        return None, ""
    return live, stale_reason(live, now=now or _now(),
                              this_host=this_host or socket.gethostname())


def delete_stale_lock(api: LeaseApi, namespace: str, log: LogFn) -> None:
    """`down`: remove a Lease left by a session that is gone; name a live holder. Blocking."""
    live, why = lock_state(api, namespace)
    if live is None:
        return
    if not why:
        log(f"A devloop session still runs in namespace {namespace}: "
            f"{describe_holder(live, now=_now())}; its lock stays")
        return
    with contextlib.suppress(KubeError):
        api.request("DELETE", LEASE_PATH.format(namespace=namespace) + "/" + LEASE_NAME,
                    what=f"Lease {namespace}/{LEASE_NAME}")
    log(f"Removed the devloop session lock of namespace {namespace} ({why})")
