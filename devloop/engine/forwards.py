"""A Kubernetes resource's port-forwards: each kept on a ready pod, healthy only when it serves.

A forward is `active` only after a connection through it to the pod's port succeeded (see
`PortForwarder.probe`). A forward that cannot connect is `error` in its `portforward`
object at once, keeps its resource from being ready, becomes an alert when it stays
broken for a few seconds, and fails the resource (and so `devloop ci`) when it stays broken
as long as a stuck container would. A connection that fails later sends the forward back
to `error` until a probe succeeds again, and so does a working forward that stops
working: each is probed every PROBE_EVERY_SECONDS (the target stopped listening, the
kubelet or the API server went away), or loses its ready pod. The local port stays open
meanwhile (a connection is closed at once), so the forward comes back by itself when the
pod does; its alert goes as soon as it works again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from devloop.engine.alerts import Alert, AlertType, alert_id, raise_alert
from devloop.engine.runner import RunnerHooks
from devloop.engine.scheduler import RuntimeState
from devloop.engine.tasks import resource_reporter, spawn
from devloop.k8s.portforward import container_port_for, describe_failure
from devloop.model import plan as p
from devloop.model import trace as tr

# A server often starts listening a moment after its pod turns ready (no readiness probe):
# a forward that fails for less than this is only shown as waiting, not alerted.
ALERT_AFTER_SECONDS = 5.0
# A forward that worked and then lost its pod or its connection is a fault, not a start:
# it is alerted this soon (a second look confirms it first).
LOST_ALERT_AFTER_SECONDS = 0.5
# A working forward is probed this often, so a target that stops listening (or a kubelet
# or API server that goes away) shows within a few seconds, not at the next request.
PROBE_EVERY_SECONDS = 2.0
# The same failure of a forward is logged at most this often.
LOG_EVERY_SECONDS = 10.0
# Broken this long, the forward fails its resource: the same patience as for a container
# stuck in a retried error (k8s_monitor.STUCK_SECONDS).
FAIL_AFTER_SECONDS = 30.0


def summarize(message: str) -> str:
    """A port-forward's error said briefly (see `describe_failure`)."""
    return describe_failure(message)


class Forwarding(Protocol):
    """What a running forward offers (PortForwarder implements it)."""

    async def probe(self) -> str: ...

    def retarget(self, namespace: str, pod: str) -> None: ...

    async def stop(self) -> None: ...


ForwardFn = Callable[[str, str, p.PortForward, Callable[[int, str], None]],
                     Awaitable[Forwarding]]


@dataclass
class _Forward:
    spec: p.PortForward
    handle: Forwarding | None = None
    namespace: str = ""
    pod: str = ""
    container_port: int = 0
    state: str = "pending"  # pending | active | error
    message: str = "no ready pod yet"
    failing_since: float | None = None
    recheck: bool = True
    alert: str = ""  # the alert published for it, if any
    worked: bool = False  # it was active once: losing it is a fault
    logged: dict[str, float] = dataclasses.field(default_factory=dict)  # message -> when


@dataclass(frozen=True)
class Verdict:
    """What the forwards add to the resource's runtime: a state (None: nothing to say)
    and its reason. Alerts are `alert` objects of their own, named after the forward."""

    state: RuntimeState | None
    reason: str


class ForwardKeeper:
    def __init__(self, resource: str, forwards: tuple[p.PortForward, ...], *,
                 forward: ForwardFn, hooks: RunnerHooks,
                 clock: Callable[[], float] = time.monotonic,
                 wake: Callable[[], None] = lambda: None) -> None:
        """`wake` asks the owner to call `keep` again soon (a forwarded connection
        failed)."""
        self.resource = resource
        self._wake = wake
        self._forward = forward
        self._hooks = hooks
        self._clock = clock
        self._forwards = {f.local_port: _Forward(f) for f in forwards}
        self._prober: asyncio.Task[None] | None = None

    def _log(self, text: str) -> None:
        self._hooks.log(self.resource, text, "runtime", "")

    async def keep(self, ready: list[tuple[str, dict[str, Any]]],
                   running: Sequence[tuple[str, dict[str, Any]]] = ()) -> None:
        """Point every forward at a ready pod (`ready`: (namespace, pod object)) and check
        the ones not known to work. A forward that never worked yet, with no ready pod,
        is opened on a `running` one (as Tilt forwards to a running pod): the user's
        first request goes through as soon as the server listens, before the readiness
        probe says so; it is `pending` until the pod is ready and a probe connects."""
        for fw in self._forwards.values():
            before = (fw.state, fw.message, fw.pod, fw.container_port)
            if not ready and running and not fw.worked:
                await self._open_early(fw, running)
            else:
                await self._keep_one(fw, ready)
            if (fw.state, fw.message, fw.pod, fw.container_port) != before:
                self._publish(fw)
        if self._prober is None and any(fw.handle for fw in self._forwards.values()):
            self._prober = spawn(self._probe_loop(), name=f"port-forward probes:{self.resource}",
                                 resource=self.resource,
                                 on_error=resource_reporter(self._hooks, self.resource))

    async def _open_early(self, fw: _Forward,
                          running: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Forward to a running pod that is not ready yet, without probing it: a refused
        connection is what a starting server gives, not a fault."""
        names = {pod.get("metadata", {}).get("name", ""): (ns, pod) for ns, pod in running}
        namespace, pod = names.get(fw.pod) or running[0]
        name = pod.get("metadata", {}).get("name", "")
        if await self._point(fw, namespace, name, pod) is None:
            return
        fw.state, fw.message, fw.failing_since = "pending", f"pod {name} is not ready yet", None

    async def _point(self, fw: _Forward, namespace: str, name: str,
                     pod: dict[str, Any]) -> Forwarding | None:
        """Open `fw` on the pod (or move it there): its open forwarding, if it could."""
        port = container_port_for(fw.spec.local_port, fw.spec.container_port, pod)
        if fw.handle is not None and port != fw.container_port:
            await fw.handle.stop()
            fw.handle = None
        if fw.handle is None:
            try:
                fw.handle = await self._forward(
                    namespace, name, dataclasses.replace(fw.spec, container_port=port),
                    self._on_error)
            except Exception as exc:  # the local port is taken, the port is invalid...
                self._fail(fw, f"cannot forward: {exc}")
                return None
            self._log(f"Forwarding http://{fw.spec.host}:{fw.spec.local_port} -> "
                      f"{name}:{port}")
            fw.recheck = True
        elif (namespace, name) != (fw.namespace, fw.pod):
            fw.handle.retarget(namespace, name)
            fw.recheck = True
        fw.namespace, fw.pod, fw.container_port = namespace, name, port
        return fw.handle

    async def _keep_one(self, fw: _Forward, ready: list[tuple[str, dict[str, Any]]]) -> None:
        if not ready:
            if fw.handle is not None and fw.pod:
                fw.handle.retarget(fw.namespace, "")  # keep the port; refuse meanwhile
            if fw.worked:
                gone = f"no ready pod (pod {fw.pod} is not ready or gone)" if fw.pod else (
                    "no ready pod")
                fw.pod = ""
                if fw.state != "error" or not fw.message.startswith("no ready pod"):
                    self._fail(fw, gone)
            else:
                fw.state, fw.message, fw.failing_since = "pending", "no ready pod", None
            return
        names = {pod.get("metadata", {}).get("name", ""): (ns, pod) for ns, pod in ready}
        namespace, pod = names.get(fw.pod) or ready[0]
        name = pod.get("metadata", {}).get("name", "")
        handle = await self._point(fw, namespace, name, pod)
        if handle is None:
            return
        tr.forwarded(name)  # the update's trace: traffic on a new pod ends the rollout
        if fw.recheck or fw.state != "active":
            fw.recheck = False
            error = await handle.probe()
            if error:
                self._fail(fw, error)
            else:
                if fw.failing_since is not None and fw.worked:
                    self._log(f"port-forward {fw.spec.local_port}: working again ("
                              f"{name}:{fw.container_port}) after "
                              f"{self._clock() - fw.failing_since:.1f} s")
                fw.state, fw.message, fw.failing_since = "active", "", None
                fw.worked = True
                self._sync_alert(fw)

    async def _probe_loop(self) -> None:
        """Probe each working forward every PROBE_EVERY_SECONDS; a failure sends it back to
        `error` (and wakes the owner, which checks it again at once)."""
        while True:
            await asyncio.sleep(PROBE_EVERY_SECONDS)
            for port, fw in list(self._forwards.items()):
                handle = fw.handle
                if handle is None or fw.state != "active":
                    continue
                try:
                    error = await handle.probe()
                except Exception as exc:  # a probe must not end the probing
                    error = f"probe failed: {exc}"
                if error and fw.handle is handle and fw.state == "active":
                    self._on_error(port, error)

    def _fail(self, fw: _Forward, message: str) -> None:
        message = summarize(message)
        now = self._clock()
        if (fw.state != "error" or fw.message != message) and (
                now - fw.logged.get(message, -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS):
            fw.logged[message] = now
            self._log(f"port-forward {fw.spec.local_port}{self._target(fw)}: {message}")
        fw.state, fw.message = "error", message
        if fw.failing_since is None:
            fw.failing_since = now

    def _on_error(self, local_port: int, message: str) -> None:
        """A forwarded connection failed: check the forward again on the next pass."""
        fw = self._forwards.get(local_port)
        if fw is None:
            return
        fw.recheck = True
        self._fail(fw, message)
        self._publish(fw)
        self._hooks.changed()
        self._wake()

    def _alert_text(self, fw: _Forward) -> str:
        """The alert the forward deserves now: broken long enough ('' if none)."""
        if fw.state != "error" or fw.failing_since is None:
            return ""
        after = LOST_ALERT_AFTER_SECONDS if fw.worked else ALERT_AFTER_SECONDS
        if self._clock() - fw.failing_since < after:
            return ""
        return f"port-forward {fw.spec.local_port}{self._target(fw)}: {fw.message}"

    def _target(self, fw: _Forward) -> str:
        """' -> pod:port', or '' when the forward has no pod now (its message says why)."""
        return f" -> {fw.pod}:{fw.container_port or fw.spec.container_port}" if fw.pod else ""

    def _sync_alert(self, fw: _Forward) -> None:
        """Publish the alert the forward deserves, or take back one it no longer does."""
        text = self._alert_text(fw)
        if text == fw.alert:
            return
        if text:
            raise_alert(self._hooks.publish, Alert(AlertType.PORT_FORWARD, self.resource, text,
                                                   key=str(fw.spec.local_port)))
        else:
            self._hooks.delete("alert", self._alert_name(fw))
        fw.alert = text

    def _alert_name(self, fw: _Forward) -> str:
        return alert_id(AlertType.PORT_FORWARD, self.resource, str(fw.spec.local_port))

    def _publish(self, fw: _Forward) -> None:
        self._hooks.publish("portforward", f"{self.resource}-{fw.spec.local_port}", {
            "resource": self.resource, "localPort": fw.spec.local_port,
            "containerPort": fw.container_port or fw.spec.container_port,
            "host": fw.spec.host, "name": fw.spec.name}, {
            "pod": fw.pod, "namespace": fw.namespace, "state": fw.state,
            "message": fw.message,
            "url": f"http://{fw.spec.host}:{fw.spec.local_port}/"})

    def verdict(self) -> Verdict:
        now = self._clock()
        waiting = ""
        failed = ""
        for fw in self._forwards.values():
            self._sync_alert(fw)
            if fw.state == "active" or fw.state == "pending":
                continue  # working, or no ready pod yet (the pods' own state says so)
            text = (f"port-forward {fw.spec.local_port} -> {fw.pod or 'pod'}:"
                    f"{fw.container_port or fw.spec.container_port}: {fw.message}")
            broken_for = now - fw.failing_since if fw.failing_since is not None else 0.0
            if fw.state == "error" and broken_for >= FAIL_AFTER_SECONDS:
                failed = failed or text
            waiting = waiting or text
        if failed:
            return Verdict(RuntimeState.ERROR, failed)
        if waiting:
            return Verdict(RuntimeState.PENDING, f"waiting for {waiting}")
        return Verdict(None, "")

    def states(self) -> dict[int, str]:
        return {port: fw.state for port, fw in self._forwards.items()}

    async def stop(self) -> None:
        """Stop listening and probing; the forwards' alerts go with them (a reload's new
        keeper publishes its own)."""
        prober, self._prober = self._prober, None
        if prober is not None:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
        for fw in self._forwards.values():
            if fw.alert:
                self._hooks.delete("alert", self._alert_name(fw))
                fw.alert = ""
            if fw.handle is not None:
                try:
                    await fw.handle.stop()
                except Exception as exc:  # stopping: report, carry on
                    self._log(f"port-forward {fw.spec.local_port}: error while stopping: {exc}")
                fw.handle = None
