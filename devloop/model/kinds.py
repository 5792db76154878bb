"""The object kinds of the daemon's store: one typed schema each, with its table columns.

Every object in the store is `{kind, metadata: {name, ...}, spec, status}`. Each kind's spec
and status are a frozen dataclass here; their fields are the JSON keys (in camelCase:
`runtime_reason` is `runtimeReason`). Writers build the dataclasses and publish
`to_json()`; readers parse with `from_json()` (unknown keys are ignored, missing ones take
the default). The API's kinds and OpenAPI schemas, `devloop get`'s columns, the terminal
UI and the dashboard all read `KINDS`.

Adding a kind: its spec and status dataclasses and a `Kind` in `KINDS`, here; then the
code that writes it.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

T = TypeVar("T")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Schema:
    """A kind's spec or status: a frozen dataclass whose fields are its JSON keys."""

    def to_json(self) -> dict[str, object]:
        """The JSON object; an `optional` field that is None is left out."""
        return {camel(f.name): _plain(getattr(self, f.name))
                for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if not (f.metadata.get("optional") and getattr(self, f.name) is None)}

    @classmethod
    def from_json(cls: type[T], data: dict[str, Any] | None) -> T:
        data = data or {}
        known = {camel(f.name): f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{attr: _typed(cls, attr, data[key]) for key, attr in known.items()
                      if key in data and data[key] is not None})


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _typed(cls: type, attr: str, value: Any) -> Any:
    """A JSON value as the field's type wants it (lists become tuples)."""
    hint = typing.get_type_hints(cls)[attr]
    origin = typing.get_origin(hint)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def doc(text: str, *, optional: bool = False) -> dict[str, object]:
    """Field metadata: its description in the API's schemas; an `optional` field is left
    out of the JSON while None (another writer adds it later)."""
    return {"doc": text, "optional": optional}


# --------------------------------------------------------------------------- the kinds


@dataclass(frozen=True)
class ResourceSpec(Schema):
    type: str = field(default="", metadata=doc("k8s, local, compose or k8s-custom-deploy"))
    labels: tuple[str, ...] = ()
    resource_deps: tuple[str, ...] = field(default=(), metadata=doc(
        "resources that must be ready before this one updates"))
    trigger_mode: str = field(default="auto", metadata=doc("auto or manual"))
    links: tuple[str, ...] = field(default=(), metadata=doc(
        "links of the Tiltfile and URLs of its port-forwards"))


@dataclass(frozen=True)
class ResourceStatus(Schema):
    update_status: str = field(default="none", metadata=doc(
        "none, pending, in_progress, ok or error"))
    runtime_status: str = field(default="unknown", metadata=doc(
        "unknown, pending, ok, error or not_applicable"))
    runtime_reason: str = ""
    pending_changes: tuple[str, ...] = field(default=(), metadata=doc(
        "changed files not updated yet (a manual resource's)"))
    error: str = field(default="", metadata=doc("why the last update failed"))
    builds: int = 0
    enabled: bool = True
    waiting: str = field(default="", metadata=doc("why a pending update does not start yet"))
    details: dict[str, object] = field(default_factory=dict, metadata=doc(
        "what the runner observed: pods, events, applied YAML, containers..."))


@dataclass(frozen=True)
class BuildSpec(Schema):
    resource: str = ""
    cause: str = ""
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildStatus(Schema):
    start_time: float = field(default=0.0, metadata=doc("epoch seconds"))
    duration: float = field(default=0.0, metadata=doc("seconds"))
    error: str = ""
    trace: dict[str, object] | None = field(default=None, metadata=doc(
        "where the time from the change to ready went (see devloop.model.trace)",
        optional=True))


@dataclass(frozen=True)
class PodSpec(Schema):
    resource: str = ""


@dataclass(frozen=True)
class PodStatus(Schema):
    phase: str = ""
    ready: bool = False
    restarts: int = 0
    problem: str = ""
    last_termination: str = ""
    containers: tuple[str, ...] = ()
    created: str = field(default="", metadata=doc("creation time, ISO 8601"))
    deleting: bool = False


@dataclass(frozen=True)
class PortForwardSpec(Schema):
    resource: str = ""
    local_port: int = 0
    container_port: int = 0
    host: str = ""
    name: str = ""


@dataclass(frozen=True)
class PortForwardStatus(Schema):
    pod: str = ""
    namespace: str = ""
    state: str = field(default="pending", metadata=doc("pending, active or error"))
    message: str = ""
    url: str = ""


@dataclass(frozen=True)
class AlertSpec(Schema):
    resource: str = field(default="", metadata=doc(
        "the resource it is about ((Tiltfile) for the session's own)"))
    type: str = field(default="", metadata=doc("see devloop.engine.alerts.AlertType"))
    key: str = field(default="", metadata=doc(
        "tells apart alerts of one type and resource (a port, a task, a digest)"))


@dataclass(frozen=True)
class AlertStatus(Schema):
    message: str = ""
    time: float = field(default=0.0, metadata=doc("when raised, epoch seconds"))
    evidence: dict[str, object] = field(default_factory=dict, metadata=doc(
        "log: the resource's last lines when raised; event: the event that showed it"))


@dataclass(frozen=True)
class SessionSpec(Schema):
    args: tuple[str, ...] = field(default=(), metadata=doc("the Tiltfile args"))


@dataclass(frozen=True)
class SessionStatus(Schema):
    error: str = field(default="", metadata=doc("why the Tiltfile does not load"))


@dataclass(frozen=True)
class LiveUpdateSpec(Schema):
    resource: str = ""
    files: tuple[str, ...] = ()
    containers: tuple[str, ...] = ()


@dataclass(frozen=True)
class LiveUpdateStatus(Schema):
    steps: tuple[dict[str, object], ...] = ()
    duration: float = 0.0
    result: str = field(default="", metadata=doc("ok, failed or fallback (a full rebuild)"))
    error: str = ""


@dataclass(frozen=True)
class ContainerSpec(Schema):
    resource: str = ""
    project: str = field(default="", metadata=doc("the Compose project"))
    service: str = ""


@dataclass(frozen=True)
class ContainerStatus(Schema):
    id: str = ""
    status: str = ""
    health: str = ""
    exit_code: int = 0
    restarts: int = 0
    ports: tuple[str, ...] = ()
    started_at: str = ""


# --------------------------------------------------------------------------- columns


class Format(enum.StrEnum):
    """How a column shows its value."""

    TEXT = "text"
    AGE = "age"  # how long ago (epoch seconds or ISO 8601)
    SECONDS = "seconds"  # 1.5s
    LINE = "line"  # the first line, shortened
    JOIN = "join"  # a list, space-separated
    RESULT = "result"  # "error" when the value is not empty, else "ok"
    UPDATE = "update"  # an update status, or "disabled" when status.enabled is false


@dataclass(frozen=True)
class Column:
    header: str
    path: str  # spec.<key>, status.<key> or metadata.<key>
    format: Format = Format.TEXT
    wide: bool = False  # only in `devloop get -o wide`
    width: int = 60  # a LINE's width (200 in wide output)
    # Read in turn when the value at `path` is empty.
    fallbacks: tuple[str, ...] = ()

    def value(self, obj: dict[str, Any]) -> Any:
        found: Any = None
        for path in (self.path, *self.fallbacks):
            part, _, key = path.partition(".")
            found = (obj.get(part) or {}).get(key)
            if found not in (None, "", [], {}):
                break
        if self.format == Format.UPDATE and (obj.get("status") or {}).get(
                "enabled", True) is False:
            return "disabled"
        return found

    def to_json(self) -> dict[str, object]:
        return {"header": self.header, "path": self.path, "format": self.format.value,
                "wide": self.wide, "width": self.width, "fallbacks": list(self.fallbacks)}


CHANGED = Column("CHANGED", "metadata.updatedAt", Format.AGE)


@dataclass(frozen=True)
class Kind:
    name: str
    description: str
    spec: type[Schema]
    status: type[Schema]
    columns: tuple[Column, ...]

    @property
    def owned(self) -> bool:
        """Its objects belong to a resource (`spec.resource`)."""
        return any(f.name == "resource" for f in dataclasses.fields(self.spec))  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        return {"kind": self.name, "description": self.description, "owned": self.owned,
                "columns": [c.to_json() for c in self.columns],
                "spec": [camel(f.name) for f in dataclasses.fields(self.spec)],  # type: ignore[arg-type]
                "status": [camel(f.name) for f in dataclasses.fields(self.status)]}  # type: ignore[arg-type]


RESOURCE = Kind("resource", "a resource of the Tiltfile and its update and runtime state",
                ResourceSpec, ResourceStatus, (
                    Column("TYPE", "spec.type"),
                    Column("UPDATE", "status.updateStatus", Format.UPDATE),
                    Column("RUNTIME", "status.runtimeStatus"),
                    Column("BUILDS", "status.builds"), CHANGED,
                    Column("TRIGGER", "spec.triggerMode", wide=True),
                    Column("LABELS", "spec.labels", Format.JOIN, wide=True),
                    Column("LINKS", "spec.links", Format.JOIN, wide=True),
                    Column("REASON", "status.error", Format.LINE, wide=True,
                           fallbacks=("status.waiting", "status.runtimeReason"))))
BUILD = Kind("build", "one update of a resource (`<resource>-<n>`)", BuildSpec, BuildStatus, (
    Column("RESOURCE", "spec.resource"), Column("STARTED", "status.startTime", Format.AGE),
    Column("DURATION", "status.duration", Format.SECONDS),
    Column("RESULT", "status.error", Format.RESULT),
    Column("CAUSE", "spec.cause", Format.LINE, width=40)))
POD = Kind("pod", "a pod of a Kubernetes resource", PodSpec, PodStatus, (
    Column("RESOURCE", "spec.resource"), Column("PHASE", "status.phase"),
    Column("READY", "status.ready"), Column("RESTARTS", "status.restarts"),
    Column("PROBLEM", "status.problem", Format.LINE),
    Column("AGE", "status.created", Format.AGE)))
PORT_FORWARD = Kind("portforward", "a port-forward of a Kubernetes resource "
                    "(`<resource>-<local port>`)", PortForwardSpec, PortForwardStatus, (
                        Column("RESOURCE", "spec.resource"),
                        Column("LOCAL", "spec.localPort"),
                        Column("CONTAINER", "spec.containerPort"), Column("POD", "status.pod"),
                        Column("STATE", "status.state"), Column("URL", "status.url")))
ALERT = Kind("alert", "a problem to look at (`<resource>-<type>[-<key>]`)", AlertSpec,
             AlertStatus, (
                 Column("RESOURCE", "spec.resource"), Column("TYPE", "spec.type"),
                 Column("MESSAGE", "status.message", Format.LINE),
                 Column("RAISED", "status.time", Format.AGE)))
SESSION = Kind("session", "the session: its Tiltfile args and load error (`tiltfile`)",
               SessionSpec, SessionStatus, (
                   Column("ARGS", "spec.args", Format.JOIN),
                   Column("ERROR", "status.error", Format.LINE), CHANGED))
LIVE_UPDATE = Kind("liveupdate", "one live update of a resource's containers",
                   LiveUpdateSpec, LiveUpdateStatus, (
                       Column("RESOURCE", "spec.resource"), Column("RESULT", "status.result"),
                       Column("DURATION", "status.duration", Format.SECONDS),
                       Column("FILES", "spec.files", Format.JOIN),
                       Column("ERROR", "status.error", Format.LINE, wide=True), CHANGED))
CONTAINER = Kind("container", "a container of a Compose service", ContainerSpec,
                 ContainerStatus, (
                     Column("RESOURCE", "spec.resource"), Column("SERVICE", "spec.service"),
                     Column("STATUS", "status.status"), Column("HEALTH", "status.health"),
                     Column("RESTARTS", "status.restarts"),
                     Column("PORTS", "status.ports", Format.JOIN),
                     Column("STARTED", "status.startedAt", Format.AGE)))

KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    RESOURCE, BUILD, POD, PORT_FORWARD, ALERT, SESSION, LIVE_UPDATE, CONTAINER)}


# --------------------------------------------------------------------------- JSON schemas


def json_schema(schema: type[Schema]) -> dict[str, Any]:
    """The OpenAPI 3.0 schema of a spec or status (more keys may come: not closed)."""
    hints = typing.get_type_hints(schema)
    properties: dict[str, Any] = {}
    for f in dataclasses.fields(schema):  # type: ignore[arg-type]
        prop = _type_schema(hints[f.name])
        if f.metadata.get("doc"):
            prop["description"] = f.metadata["doc"]
        properties[camel(f.name)] = prop
    return {"type": "object", "properties": properties}


def _type_schema(hint: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return {**_type_schema(inner[0]), "nullable": True}
    if origin is tuple or origin is list:
        return {"type": "array", "items": _type_schema(args[0]) if args else {}}
    if origin is dict or hint is dict:
        return {"type": "object"}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number",
              object: "object"}
    if hint in simple:
        return {"type": simple[hint]}
    raise TypeError(f"no JSON schema for {hint!r}")
