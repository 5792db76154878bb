"""Argument parsing shared by the Kubernetes builtins: port forwards, selectors, labels.

Each function takes the builtin's name so errors read like Tilt's
("k8s_resource \"web\": portForward port value \"x\" is not in the valid range [0-65535]").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from devloop.k8s.objects import namespace_or_default
from devloop.model import plan as p
from devloop.tiltfile.context import struct_kind, type_name, want_str, want_str_list
from devloop.tiltfile.errors import BuiltinError

_OCTET = r"([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])"
_IP = rf"({_OCTET}\.){{3}}{_OCTET}"
_HOST = (r"(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
         r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])")
_VALID_HOST = re.compile(rf"^(?:{_IP}|{_HOST})$")
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.\-]*[A-Za-z0-9])?$")


def _port(prefix: str, text: str) -> int:
    if not re.fullmatch(r"\d+", text.strip()) or not 0 <= int(text) <= 65535:
        raise BuiltinError(f"{prefix}portForward port value {text!r} is not in the valid range "
                           "[0-65535]")
    return int(text)


def port_forward_from_string(prefix: str, text: str) -> p.PortForward:
    """'local', 'local:container' or 'host:local:container'."""
    parts = text.split(":", 2)
    host = ""
    if len(parts) == 3:
        host = parts[0]
        if not _VALID_HOST.match(host):
            raise BuiltinError(f"{prefix}portForward host value {host!r} is not a valid "
                               "hostname or IP address")
        parts = parts[1:]
    local = _port(prefix, parts[0])
    container = _port(prefix, parts[1]) if len(parts) > 1 else 0
    return p.PortForward(local, container, host=host or "localhost")


def port_forward_struct(value: dict[str, Any]) -> p.PortForward:
    return p.PortForward(value["local_port"], value["container_port"],
                         host=value["host"] or "localhost", name=value["name"],
                         link_path=value["link_path"])


def port_forwards(fn: str, resource: str, value: Any) -> list[p.PortForward]:
    """An int, a string, a port_forward(), or a list of those (Tilt's port_forwards=)."""
    prefix = f'{fn} "{resource}": '
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out: list[p.PortForward] = []
    for item in items:
        if isinstance(item, bool):
            raise BuiltinError(f"{prefix}port_forwards must be an int, a string, a "
                               "port_forward, or a sequence of those; got bool")
        if isinstance(item, int):
            if not 0 <= item <= 65535:
                raise BuiltinError(f"{prefix}portForward port value {item} is not in the valid "
                                   "range [0-65535]")
            out.append(p.PortForward(item, 0))
        elif isinstance(item, str):
            out.append(port_forward_from_string(prefix, item))
        elif struct_kind(item) == "port_forward":
            out.append(port_forward_struct(item))
        else:
            raise BuiltinError(f"{prefix}port_forwards must be an int, a string, a "
                               f"port_forward, or a sequence of those; got {type_name(item)}")
    return out


def pod_selectors(fn: str, value: Any) -> list[tuple[tuple[str, str], ...]]:
    """A dict of labels or a list of dicts; a pod matches one set when it has all its labels."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out: list[tuple[tuple[str, str], ...]] = []
    for item in items:
        if not isinstance(item, dict) or struct_kind(item):
            raise BuiltinError(f"{fn}: extra_pod_selectors must be a dict or a list of dicts; "
                               f"got {type_name(item)}")
        for key, label in item.items():
            if not isinstance(key, str) or not isinstance(label, str):
                raise BuiltinError(f"{fn}: pod label keys and values must be strings; got "
                                   f"{key!r}: {label!r}")
        if item:
            out.append(tuple(sorted(item.items())))
    return out


def labels(fn: str, value: Any) -> list[str]:
    """UI labels: alphanumeric plus '_', '-', '.', at most 63 characters."""
    out = want_str_list(fn, "labels", value)
    for label in out:
        if len(label) > 63 or not _LABEL.match(label):
            raise BuiltinError(
                f"{fn}: invalid label {label!r}: labels must be at most 63 characters, "
                "alphanumeric, '-', '_' or '.', and start and end with an alphanumeric")
    return out


def choice(fn: str, param: str, value: Any, allowed: tuple[str, ...]) -> str:
    text = want_str(fn, param, value, allow_blob=False)
    if text not in allowed:
        wanted = ", ".join(repr(a) for a in allowed if a)
        raise BuiltinError(f"{fn}: for parameter '{param}': got {text!r}, want one of {wanted}")
    return text


@dataclass(frozen=True)
class ObjectSelector:
    """Case-insensitive regexes on apiVersion, kind, name, namespace; empty matches all.

    Unanchored, like Tilt's partial-match selectors (k8s_kind, filter_yaml,
    k8s_image_json_path).
    """

    api_version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""

    @classmethod
    def build(cls, fn: str, **fields: str) -> ObjectSelector:
        for param, pattern in fields.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise BuiltinError(f"{fn}: for parameter '{param}': invalid regexp "
                                   f"{pattern!r}: {exc}") from None
        return cls(**fields)

    def matches(self, obj: p.K8sObject) -> bool:
        pairs = ((self.api_version, obj.api_version), (self.kind, obj.kind),
                 (self.name, obj.name), (self.namespace, namespace_or_default(obj)))
        return all(not pattern or re.search(pattern, value, re.IGNORECASE)
                   for pattern, value in pairs)
