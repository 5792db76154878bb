"""Turn what the Kubernetes builtins declared into Plan resources (Tilt's resource assembly).

Runs after evaluation, once the image builds are known: group the YAML into workload
resources, apply every k8s_resource() in call order (regroup, rename, options), put the
rest in `uncategorized`, and attach the builds whose images the objects reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devloop.k8s import grouping, images
from devloop.k8s.objects import display_id
from devloop.model import dockerfile as dockerfile_syntax
from devloop.model import plan as p
from devloop.tiltfile.errors import Location, TiltfileError
from devloop.tiltfile.k8s_args import ObjectSelector


@dataclass
class KindInfo:
    """A k8s_kind / k8s_image_json_path declaration: objects it selects are workloads."""

    selector: ObjectSelector
    json_paths: list[str] = field(default_factory=list)
    pod_readiness: str = ""


@dataclass
class ResourceOptions:
    """One k8s_resource() call; unset scalars (None) leave earlier values alone."""

    workload: str
    new_name: str
    location: Location | None
    port_forwards: list[p.PortForward] = field(default_factory=list)
    extra_pod_selectors: list[tuple[tuple[str, str], ...]] = field(default_factory=list)
    trigger_mode: p.TriggerMode | None = None
    resource_deps: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    auto_init: bool | None = None
    labels: list[str] = field(default_factory=list)
    links: list[p.Link] = field(default_factory=list)
    pod_readiness: str | None = None
    discovery_strategy: str | None = None


@dataclass
class _Entry:
    name: str
    objects: list[int] = field(default_factory=list)
    workload: int | None = None
    custom: p.Resource | None = None
    opts: list[ResourceOptions] = field(default_factory=list)


def is_workload(obj: p.K8sObject, kinds: Sequence[KindInfo]) -> bool:
    """Declared with k8s_kind/k8s_image_json_path, or a built-in kind with a pod template."""
    if any(info.selector.matches(obj) for info in kinds):
        return True
    return images.pod_template(obj.manifest()) is not None


def json_paths_for(obj: p.K8sObject, kinds: Sequence[KindInfo]) -> list[str]:
    return [path for info in kinds if info.selector.matches(obj) for path in info.json_paths]


def workload_names(objects: Sequence[p.K8sObject], workloads: Sequence[int],
                   from_function: dict[str, Any]) -> list[str]:
    """Names from workload_to_resource_function if one ran, else Tilt's unique names."""
    if not from_function:
        try:
            return grouping.unique_names([objects[i] for i in workloads])
        except grouping.GroupingError as exc:
            raise TiltfileError(str(exc)) from None
    names: list[str] = []
    owner: dict[str, int] = {}
    for index in workloads:
        name = from_function.get(str(index))
        ident = display_id(objects[index])
        if not isinstance(name, str):
            raise TiltfileError(
                f"workload_to_resource_function: error determining resource name for "
                f"'{ident}': invalid return value. wanted: string. got: {type(name).__name__}")
        if name in owner:
            raise TiltfileError(
                f"workload_to_resource_function: both '{ident}' and "
                f"'{display_id(objects[owner[name]])}' mapped to resource name '{name}'")
        owner[name] = index
        names.append(name)
    return names


def _claims(objects: Sequence[p.K8sObject], options: Sequence[ResourceOptions],
            workloads: set[int]) -> dict[tuple[int, int], int]:
    """The object each k8s_resource(objects=[...]) selector names, keyed by (call, n)."""
    claims: dict[tuple[int, int], int] = {}
    every = ", ".join(f"'{grouping.full_name(o)}'" for o in objects)
    for call, opt in enumerate(options):
        for n, fragment in enumerate(opt.objects):
            try:
                matches = grouping.fragment_matches(objects, fragment)
            except grouping.GroupingError as exc:
                raise TiltfileError(f"k8s_resource: {exc}", opt.location) from None
            if not matches:
                raise TiltfileError(f"k8s_resource: no object identified by the fragment "
                                    f"{fragment!r} could be found. Possible objects are: "
                                    f"{every}", opt.location)
            if len(matches) > 1:
                found = ", ".join(f"'{grouping.full_name(objects[i])}'" for i in matches)
                raise TiltfileError(f"k8s_resource: {fragment!r} is not a unique fragment. "
                                    f"Objects that match {fragment!r} are {found}",
                                    opt.location)
            if matches[0] in workloads:
                raise TiltfileError(
                    f"k8s_resource: object {fragment!r} is a workload, which is a resource of "
                    "its own; rename it with k8s_resource(workload, new_name=...) instead",
                    opt.location)
            claims[(call, n)] = matches[0]
    return claims


def group(objects: Sequence[p.K8sObject], kinds: Sequence[KindInfo],
          options: Sequence[ResourceOptions], custom: Sequence[p.Resource],
          names_from_function: dict[str, Any]) -> list[_Entry]:
    """Resources in order: custom deploys, workloads (YAML order), new groups, uncategorized."""
    workloads = [i for i, obj in enumerate(objects) if is_workload(obj, kinds)]
    names = workload_names(objects, workloads, names_from_function)
    claims = _claims(objects, options, set(workloads))
    groups, leftover = grouping.group_workloads(objects, workloads, names, claims.values())
    entries = [_Entry(r.name, custom=r) for r in custom]
    entries += [_Entry(g.name, list(g.objects), g.workload) for g in groups]
    by_name: dict[str, _Entry] = {}
    for entry in entries:
        if entry.name in by_name:
            raise TiltfileError(f'k8s_resource named "{entry.name}" already exists')
        by_name[entry.name] = entry
    remaining = list(leftover)
    uncategorized = _Entry(grouping.UNCATEGORIZED) if remaining else None
    if uncategorized and uncategorized.name not in by_name:
        by_name[uncategorized.name] = uncategorized
    for call, opt in enumerate(options):
        if opt.workload:
            claimed = by_name.get(opt.workload)
            if claimed is None:
                known = ", ".join(e.name for e in entries) or "(none)"
                raise TiltfileError(f"k8s_resource: no workload found matching "
                                    f"'{opt.workload}'. Known k8s resources: {known}",
                                    opt.location)
            entry = claimed
        else:
            if opt.new_name in by_name:
                raise TiltfileError(f'k8s_resource named "{opt.new_name}" already exists',
                                    opt.location)
            entry = _Entry(opt.new_name)
            entries.append(entry)
            by_name[entry.name] = entry
        for n, fragment in enumerate(opt.objects):
            index = claims[(call, n)]
            if entry.custom is not None:
                raise TiltfileError(f"k8s_resource: objects= cannot be added to the "
                                    f"k8s_custom_deploy resource '{entry.name}'", opt.location)
            if index not in remaining:
                valid = ", ".join(f"'{grouping.full_name(objects[i])}'" for i in remaining)
                raise TiltfileError(f"k8s_resource: no object identified by the fragment "
                                    f"{fragment!r} could be found in remaining YAML. Valid "
                                    f"remaining fragments are: {valid}", opt.location)
            remaining.remove(index)
            entry.objects.append(index)
        if opt.workload and opt.new_name and opt.new_name != entry.name:
            if opt.new_name in by_name:
                raise TiltfileError(f"k8s_resource: cannot rename '{entry.name}' to "
                                    f"'{opt.new_name}': a resource with that name already "
                                    "exists", opt.location)
            del by_name[entry.name]
            entry.name = opt.new_name
            by_name[entry.name] = entry
        entry.opts.append(opt)
    if uncategorized is not None and remaining:
        uncategorized.objects = remaining
        entries.append(uncategorized)
    return entries


def _image_deps(ref: str, targets: dict[str, p.ImageTarget], out: list[str]) -> None:
    """`ref` after its image_deps (transitively), each once."""
    target = targets.get(ref)
    if target is None or ref in out:
        return
    for dep in target.image_deps:
        _image_deps(dep, targets, out)
    if ref not in out:
        out.append(ref)


def _injections(entry: _Entry, objects: Sequence[p.K8sObject], kinds: Sequence[KindInfo],
                targets: Sequence[p.ImageTarget]) -> tuple[list[p.ImageInjection], list[str]]:
    build_refs = [t.ref for t in targets]
    env_refs = [t.ref for t in targets if t.match_in_env_vars]
    injections: list[p.ImageInjection] = []
    refs: list[str] = []
    for index in entry.objects:
        obj = objects[index]
        for found in images.find_images(obj.manifest(), json_paths_for(obj, kinds), env_refs):
            ref = images.first_match(env_refs if found.in_env else build_refs, found.ref)
            if ref is None:
                continue
            injections.append(p.ImageInjection(obj.key, found.json_path, ref))
            if ref not in refs:
                refs.append(ref)
    return injections, refs


def _pod_readiness(entry: _Entry, objects: Sequence[p.K8sObject],
                   kinds: Sequence[KindInfo]) -> str:
    for opt in reversed(entry.opts):
        if opt.pod_readiness is not None:
            return opt.pod_readiness
    if entry.workload is not None:
        for info in kinds:
            if info.pod_readiness and info.selector.matches(objects[entry.workload]):
                return info.pod_readiness
        return ""
    if entry.custom is not None:
        return entry.custom.pod_readiness
    # Nothing here creates pods, so there is nothing to wait for (Tilt does the same).
    return "ignore"


def to_resources(entries: Sequence[_Entry], objects: Sequence[p.K8sObject],
                 kinds: Sequence[KindInfo], targets: Sequence[p.ImageTarget], *,
                 default_trigger: p.TriggerMode = p.TriggerMode.AUTO) -> list[p.Resource]:
    """`default_trigger` is trigger_mode()'s, for resources no k8s_resource() sets one on."""
    by_ref = {t.ref: t for t in targets}
    out: list[p.Resource] = []
    for entry in entries:
        injections, refs = _injections(entry, objects, kinds, targets)
        base = entry.custom or p.Resource(name=entry.name, type=p.ResourceType.K8S)
        if entry.custom is not None:
            refs = list(entry.custom.image_refs)
        ordered: list[str] = []
        for ref in refs:
            _image_deps(ref, by_ref, ordered)
        trigger = default_trigger
        auto_init = base.auto_init
        discovery = base.discovery_strategy
        for opt in entry.opts:
            trigger = opt.trigger_mode if opt.trigger_mode is not None else trigger
            auto_init = opt.auto_init if opt.auto_init is not None else auto_init
            discovery = opt.discovery_strategy if opt.discovery_strategy is not None \
                else discovery
        out.append(p.Resource(
            name=entry.name,
            type=base.type,
            labels=tuple(dict.fromkeys(label for o in entry.opts for label in o.labels)),
            resource_deps=tuple(dict.fromkeys(d for o in entry.opts for d in o.resource_deps)),
            trigger_mode=trigger,
            auto_init=auto_init,
            links=tuple(link for o in entry.opts for link in o.links),
            objects=tuple(objects[i] for i in entry.objects),
            image_refs=tuple(ordered),
            injections=tuple(injections),
            port_forwards=tuple(pf for o in entry.opts for pf in o.port_forwards),
            pod_readiness=_pod_readiness(entry, objects, kinds),
            extra_pod_selectors=tuple(s for o in entry.opts for s in o.extra_pod_selectors),
            discovery_strategy=discovery,
            deps=base.deps,
            apply_cmd=base.apply_cmd,
            delete_cmd=base.delete_cmd,
            live_update=base.live_update,
            image_selector=base.image_selector,
            container_selector=base.container_selector,
        ))
    return out


def unused_image_warnings(targets: Sequence[p.ImageTarget], resources: Sequence[p.Resource],
                          objects: Sequence[p.K8sObject], suppressed: Sequence[str],
                          read: Callable[[p.ImageTarget], str]) -> list[str]:
    """Tilt's "Image not used in any deploy config" warning for each unused build."""
    used = {ref for r in resources for ref in r.image_refs}
    used |= {dep for t in targets for dep in t.image_deps}
    found = [f.ref for o in objects for f in images.find_images(o.manifest())]
    warnings: list[str] = []
    for target in targets:
        if target.ref in used or target.ref in suppressed:
            continue
        # A build used as the base image of another build is used.
        if any(t is not target and _mentions_from(read(t), target.ref) for t in targets):
            continue
        lines = ["Image not used in any deploy config:", f"    ✕ {target.ref}"]
        candidates = [ref for ref in dict.fromkeys(found) if images.first_match(
            [t.ref for t in targets], ref) is None]
        if candidates:
            lines.append("Did you mean…")
            lines.extend(f"    - {ref}" for ref in candidates[:5])
        lines.append("Skipping this image build")
        lines.append("If this is deliberate, suppress this warning with: "
                     f'update_settings(suppress_unused_image_warnings=["{target.ref}"])')
        warnings.append("\n".join(lines))
    return warnings


def _mentions_from(dockerfile: str, ref: str) -> bool:
    """Whether the Dockerfile builds FROM `ref` or copies --from it (Tilt's dependency rule)."""
    return any(use.keyword in dockerfile_syntax.DEPENDENCY_KEYWORDS
               and images.ref_matches(ref, use.ref)
               for use in dockerfile_syntax.image_uses(dockerfile))
