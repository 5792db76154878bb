"""Parse Kubernetes YAML text into `plan.K8sObject`s, and write objects back as YAML.

Errors name the source (a file path, or what produced a Blob), the document's line and,
when known, the object, so a user can find the bad manifest in a long helm output.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from typing import Any

import yaml

from devloop.model import plan as p


class YAMLError(Exception):
    """A YAML stream could not be turned into Kubernetes objects."""


def _canonical(value: Any) -> Any:
    """Plain JSON data: YAML timestamps and dates become the strings the API server expects."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value


def manifest_json(manifest: dict[str, Any]) -> str:
    """The canonical JSON text of a manifest (sorted keys) kept in the Plan."""
    return json.dumps(_canonical(manifest), sort_keys=True, separators=(",", ":"))


def to_object(manifest: dict[str, Any]) -> p.K8sObject:
    metadata = manifest.get("metadata") or {}
    return p.K8sObject(
        api_version=str(manifest.get("apiVersion", "")),
        kind=str(manifest.get("kind", "")),
        name=str(metadata.get("name", "")),
        namespace=str(metadata.get("namespace") or ""),
        manifest_json=manifest_json(manifest),
    )


def _documents(text: str, source: str) -> list[tuple[int, Any]]:
    """(line, data) of each non-empty document, lines 1-based."""
    loader = yaml.SafeLoader(text)
    out: list[tuple[int, Any]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is not None:
                out.append((node.start_mark.line + 1, data))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise YAMLError(f"{source}: YAML parse error{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise YAMLError(f"{source}: YAML parse error: {exc}") from None
    finally:
        loader.dispose()
    return out


def _check(manifest: Any, source: str, line: int) -> dict[str, Any]:
    if not isinstance(manifest, dict):
        raise YAMLError(f"{source}: document at line {line} is a {type(manifest).__name__}, "
                        "want a Kubernetes object (a mapping with apiVersion, kind, metadata)")
    metadata = manifest.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    label = f"object {name!r}" if name else "object"
    for field in ("apiVersion", "kind"):
        if not isinstance(manifest.get(field), str) or not manifest.get(field):
            raise YAMLError(f"{source}: {label} at line {line} has no '{field}'")
    if not isinstance(metadata, dict) or not isinstance(name, str) or not name:
        raise YAMLError(f"{source}: {manifest['kind']} at line {line} has no 'metadata.name'")
    return manifest


def parse_manifests(text: str, source: str) -> list[dict[str, Any]]:
    """The objects of a YAML stream, in order; `kind: *List` documents are expanded."""
    manifests: list[dict[str, Any]] = []
    for line, data in _documents(text, source):
        kind = data.get("kind") if isinstance(data, dict) else None
        if isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"),
                                                                          list):
            for item in data["items"]:
                manifests.append(_check(item, source, line))
        else:
            manifests.append(_check(data, source, line))
    return manifests


def parse_objects(text: str, source: str) -> list[p.K8sObject]:
    """Parse a YAML stream (file contents or a Blob) into K8sObjects."""
    return [to_object(m) for m in parse_manifests(text, source)]


def to_yaml(objects: Iterable[p.K8sObject]) -> str:
    """A multi-document YAML stream of the objects, "" when there are none."""
    docs = [obj.manifest() for obj in objects]
    if not docs:
        return ""
    return yaml.safe_dump_all(docs, default_flow_style=False, sort_keys=False,
                              explicit_start=False)


def group_of(api_version: str) -> str:
    """The API group of an apiVersion ("apps/v1" -> "apps", "v1" -> "")."""
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def namespace_or_default(obj: p.K8sObject) -> str:
    return obj.namespace or "default"


def display_id(obj: p.K8sObject) -> str:
    """name:kind:namespace:group, the lower-case identity Tilt prints for an object."""
    return f"{obj.name}:{obj.kind}:{namespace_or_default(obj)}:{group_of(obj.api_version)}".lower()
