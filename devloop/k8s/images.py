"""Find container image references in Kubernetes objects and match them against builds.

Matching follows Tilt: a reference is normalised the way Docker does ("redis" is
"docker.io/library/redis"), and a build ref without a tag matches any tag or digest of
the same repository; a build ref with a tag matches only that exact reference.
Locations are JSONPath strings ("{.spec.template.spec.containers[0].image}") so the
engine can rewrite exactly the fields found here (`get_path` / `set_path`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from devloop.model.images import ImageRef, parse_or_none

# ---------------------------------------------------------------------------- references


def parse_ref(text: str) -> ImageRef | None:
    """Docker's normalisation of an image reference; None if it is not one."""
    return parse_or_none(text)


def ref_matches(build_ref: str, found: str) -> bool:
    """Whether an image found in YAML is the one a docker_build/custom_build produces."""
    wanted, got = parse_ref(build_ref), parse_ref(found)
    if wanted is None or got is None:
        return False
    if wanted.tag or wanted.digest:
        return wanted == got
    return wanted.name == got.name


def first_match(build_refs: Sequence[str], found: str) -> str | None:
    for ref in build_refs:
        if ref_matches(ref, found):
            return ref
    return None


# ---------------------------------------------------------------------------- JSONPath subset

Step = str | int  # a field name, an index; "*" is a wildcard over a list or a map


def parse_path(path: str) -> list[Step]:
    """Parse the JSONPath forms Tilt accepts for images: `{.a.b[0].c[*].d}`, `.a['x.y']`.

    Braces and the leading dot are optional. Raises ValueError for anything else.
    """
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    i = 0
    token = re.compile(r"\.([A-Za-z0-9_\-/]+|\*)|\[(\d+|\*)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
    if text and text[0] not in ".[":
        text = "." + text
    while i < len(text):
        match = token.match(text, i)
        if not match:
            raise ValueError(f"invalid JSONPath {path!r} at {text[i:]!r}")
        field, index, quoted, dquoted = match.groups()
        if field is not None:
            steps.append(field)
        elif index is not None:
            steps.append("*" if index == "*" else int(index))
        else:
            steps.append(quoted if quoted is not None else dquoted)
        i = match.end()
    if not steps:
        raise ValueError(f"invalid JSONPath {path!r}: empty")
    return steps


def format_path(steps: Sequence[Step]) -> str:
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        elif re.fullmatch(r"[A-Za-z0-9_\-]+", step):
            out += f".{step}"
        else:
            out += f"['{step}']"
    return "{" + out + "}"


def expand_path(data: Any, steps: Sequence[Step]) -> list[tuple[list[Step], Any]]:
    """Concrete (path, value) pairs that a path with wildcards reaches in data."""
    results: list[tuple[list[Step], Any]] = [([], data)]
    for step in steps:
        nxt: list[tuple[list[Step], Any]] = []
        for prefix, value in results:
            if step == "*":
                if isinstance(value, list):
                    nxt.extend(([*prefix, n], v) for n, v in enumerate(value))
                elif isinstance(value, dict):
                    nxt.extend(([*prefix, str(k)], v) for k, v in value.items())
            elif isinstance(step, int):
                if isinstance(value, list) and 0 <= step < len(value):
                    nxt.append(([*prefix, step], value[step]))
            elif isinstance(value, dict) and step in value:
                nxt.append(([*prefix, step], value[step]))
        results = nxt
    return results


def get_path(data: Any, path: str) -> Any:
    """The value at a concrete path; KeyError if it is missing."""
    found = expand_path(data, parse_path(path))
    if not found:
        raise KeyError(path)
    return found[0][1]


def set_path(data: Any, path: str, value: Any) -> None:
    """Set the value at a concrete path (no wildcards) in place."""
    steps = parse_path(path)
    target = data
    for step in steps[:-1]:
        target = target[step]
    target[steps[-1]] = value


# ---------------------------------------------------------------------------- finding images

POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "pod": ("spec",),
    "podtemplate": ("template", "spec"),
    "deployment": ("spec", "template", "spec"),
    "statefulset": ("spec", "template", "spec"),
    "daemonset": ("spec", "template", "spec"),
    "replicaset": ("spec", "template", "spec"),
    "replicationcontroller": ("spec", "template", "spec"),
    "job": ("spec", "template", "spec"),
    "cronjob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def pod_spec_path(kind: str) -> tuple[str, ...] | None:
    return POD_SPEC_PATHS.get(kind.lower())


def pod_template(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template (metadata + spec) of a built-in workload, or None."""
    path = pod_spec_path(str(manifest.get("kind", "")))
    if path is None:
        return None
    node: Any = manifest
    for step in path[:-1]:
        node = node.get(step) if isinstance(node, dict) else None
    if not isinstance(node, dict) or not isinstance(node.get(path[-1]), dict):
        return None
    return node


@dataclass(frozen=True)
class FoundImage:
    json_path: str
    ref: str  # as written in the object
    in_env: bool = False


def find_images(manifest: dict[str, Any], json_paths: Iterable[str] = (),
                env_refs: Sequence[str] = ()) -> list[FoundImage]:
    """Image references in an object, in document order.

    Containers and init containers of every built-in workload's pod template; the values
    reached by `json_paths` (from k8s_kind / k8s_image_json_path); and container env var
    values that match one of `env_refs` (builds with match_in_env_vars=True).
    """
    found: list[FoundImage] = []
    path = pod_spec_path(str(manifest.get("kind", "")))
    spec = expand_path(manifest, list(path)) if path else []
    for spec_path, pod_spec in spec:
        if not isinstance(pod_spec, dict):
            continue
        for list_name in _CONTAINER_LISTS:
            containers = pod_spec.get(list_name)
            if not isinstance(containers, list):
                continue
            for n, container in enumerate(containers):
                if not isinstance(container, dict):
                    continue
                base: list[Step] = [*spec_path, list_name, n]
                image = container.get("image")
                if isinstance(image, str) and image:
                    found.append(FoundImage(format_path([*base, "image"]), image))
                for e, env in enumerate(container.get("env") or []):
                    value = env.get("value") if isinstance(env, dict) else None
                    if isinstance(value, str) and first_match(env_refs, value):
                        found.append(FoundImage(format_path([*base, "env", e, "value"]), value,
                                                in_env=True))
    for json_path in json_paths:
        for steps, value in expand_path(manifest, parse_path(json_path)):
            if isinstance(value, str) and value:
                found.append(FoundImage(format_path(steps), value))
    return found
