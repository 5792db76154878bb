"""The Kubernetes builtins: k8s_yaml, k8s_resource, k8s_kind, k8s_custom_deploy, contexts.

Declarations are collected during evaluation; `contribute` assembles them into resources
(see k8s_assembly) once the image builds are known.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from devloop.k8s.objects import YAMLError, display_id, group_of, namespace_or_default
from devloop.k8s.objects import parse_objects as _parse
from devloop.model import plan as p
from devloop.model.images import parse_image_ref
from devloop.tiltfile import k8s_args as args
from devloop.tiltfile.context import (
    EvalContext,
    PlanDraft,
    command_spec,
    is_blob,
    read_limited,
    struct,
    type_name,
    want_bool,
    want_int,
    want_str,
    want_str_dict,
    want_str_list,
)
from devloop.tiltfile.errors import BuiltinError, TiltfileError
from devloop.tiltfile.k8s_assembly import (
    KindInfo,
    ResourceOptions,
    group,
    is_workload,
    to_resources,
    unused_image_warnings,
)
from devloop.tiltfile.links import parse_links
from devloop.tiltfile.live_update import (
    check_watched_paths,
    image_tree_paths,
    parse_live_update,
)


def yaml_objects(ctx: EvalContext, fn: str, value: Any) -> list[p.K8sObject]:
    """Objects from a filename (relative to the calling file), a Blob, or a list of those."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out: list[p.K8sObject] = []
    for item in items:
        if is_blob(item):
            text, source = item["__text"], "YAML blob"
        elif isinstance(item, str):
            text, source = ctx.read_text(item, fn), ctx.abspath(item)
        else:
            raise BuiltinError(f"{fn}: for parameter 'yaml': got {type_name(item)}, want "
                               "string (a filename), Blob, or a list of those")
        try:
            out.extend(_parse(text, source))
        except YAMLError as exc:
            raise BuiltinError(f"{fn}: {exc}") from None
    return out


# `devloop up|ci|down --context/--namespace` reach the Tiltfile (evaluated in a child
# process) through these variables, which a user may also set.
CONTEXT_ENV = "DEVLOOP_CONTEXT"
NAMESPACE_ENV = "DEVLOOP_NAMESPACE"


def _kubeconfig(environ: Mapping[str, str], limit: int) -> dict[str, Any]:
    """The merged view kubectl has: the first file setting current-context wins. Files
    are read through the capped reader; a device among them is an error."""
    paths = [x for x in environ.get("KUBECONFIG", "").split(os.pathsep) if x]
    if not paths:
        paths = [os.path.join(os.path.expanduser("~"), ".kube", "config")]
    merged: dict[str, Any] = {"current-context": "", "contexts": []}
    for path in paths:
        try:
            data = yaml.safe_load(read_limited(path, limit)) or {}
        except BuiltinError as exc:
            raise BuiltinError(f"kubeconfig: {exc}") from None
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(data, dict):
            continue
        if not merged["current-context"] and isinstance(data.get("current-context"), str):
            merged["current-context"] = data["current-context"]
        merged["contexts"].extend(c for c in data.get("contexts") or [] if isinstance(c, dict))
    return merged


def _optional_trigger_mode(fn: str, value: Any) -> p.TriggerMode | None:
    if value is None:
        return None
    number = want_int(fn, "trigger_mode", value)
    if number not in (0, 1):
        raise BuiltinError(f"{fn}: for parameter 'trigger_mode': got {number}, want "
                           "TRIGGER_MODE_AUTO or TRIGGER_MODE_MANUAL")
    return p.TriggerMode(number)


class K8sArea:
    """k8s_yaml, k8s_resource, k8s_kind, k8s_image_json_path, k8s_custom_deploy,
    port_forward, allow_k8s_contexts, k8s_context, k8s_namespace."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.objects: list[p.K8sObject] = []
        self.kinds: list[KindInfo] = []
        self.options: list[ResourceOptions] = []
        self.custom: list[p.Resource] = []
        self.live_update_only: list[p.LiveUpdateOnly] = []
        self.allowed_contexts: list[str] = []
        self.workload_names: dict[str, Any] = {}
        self._kubeconfig: dict[str, Any] | None = None

    def builtins(self) -> Mapping[str, Any]:
        return {name: getattr(self, name) for name in (
            "k8s_yaml", "k8s_resource", "k8s_kind", "k8s_image_json_path",
            "k8s_custom_deploy", "port_forward", "allow_k8s_contexts", "k8s_context",
            "k8s_namespace")}

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def hooks(self) -> dict[str, Callable[..., Any]]:
        """workload_to_resource_function (prelude.star) asks for the workloads, then names."""
        return {"__dl_py_workloads": self._workloads,
                "__dl_py_set_workload_names": self._set_workload_names}

    def _workloads(self) -> list[dict[str, str]]:
        return [{"__key": str(i), "name": obj.name, "kind": obj.kind,
                 "namespace": namespace_or_default(obj), "group": group_of(obj.api_version),
                 "api_version": obj.api_version}
                for i, obj in enumerate(self.objects) if is_workload(obj, self.kinds)]

    def _set_workload_names(self, names: dict[str, Any]) -> None:
        self.workload_names = dict(names)

    # ------------------------------------------------------------------ builtins

    def k8s_yaml(self, yaml: Any, allow_duplicates: Any = False) -> None:
        """k8s_yaml(yaml, allow_duplicates=False): register objects to deploy.

        `yaml` is a filename (relative to the calling file), a Blob of YAML text (from
        read_file, local, helm, kustomize...) or a list of those. The files are watched.
        Registering an object twice is an error unless allow_duplicates=True, in which case
        the later definition replaces the earlier one.
        """
        allow = want_bool("k8s_yaml", "allow_duplicates", allow_duplicates)
        first = yaml[0] if isinstance(yaml, list | tuple) and yaml else yaml
        new = yaml_objects(self.ctx, "k8s_yaml", yaml)
        # Like Tilt: a file may hold no objects, but no argument or an empty Blob is a mistake.
        if not new and not (isinstance(first, str) and first):
            raise BuiltinError("k8s_yaml: Empty or Invalid YAML Resource Detected")
        index = {obj.key: n for n, obj in enumerate(self.objects)}
        for obj in new:
            if obj.key in index:
                if not allow:
                    raise BuiltinError(
                        f"k8s_yaml: Duplicate YAML Entity: {display_id(obj)} was already "
                        "registered by an earlier k8s_yaml call; remove the duplicate or pass "
                        "allow_duplicates=True")
                self.objects[index[obj.key]] = obj
            else:
                index[obj.key] = len(self.objects)
                self.objects.append(obj)

    def k8s_resource(self, workload: Any = "", new_name: Any = "", port_forwards: Any = None,
                     extra_pod_selectors: Any = None, trigger_mode: Any = None,
                     resource_deps: Any = None, objects: Any = None, auto_init: Any = None,
                     labels: Any = None, links: Any = None, pod_readiness: Any = None,
                     discovery_strategy: Any = None) -> None:
        """Configure the resource of `workload` (its auto-assembled name), or, with no
        workload, make a new resource `new_name` from `objects` ("name[:kind[:namespace]]").

        Several calls for one resource add up: lists (port_forwards, objects, labels...)
        append and the scalars given last win. Unknown names are reported after evaluation.
        """
        fn = "k8s_resource"
        workload_s = want_str(fn, "workload", workload or "", allow_blob=False)
        name_s = want_str(fn, "new_name", new_name or "", allow_blob=False)
        object_list = want_str_list(fn, "objects", objects)
        if not workload_s and not object_list:
            raise BuiltinError("k8s_resource doesn't specify a workload or any objects. All "
                               "non-workload resources must specify 1 or more objects")
        if not workload_s and not name_s:
            raise BuiltinError("k8s_resource has only non-workload objects but doesn't "
                               "provide a new_name")
        self.options.append(ResourceOptions(
            workload=workload_s,
            new_name=name_s,
            location=self.ctx.location(),
            port_forwards=args.port_forwards(fn, workload_s or name_s, port_forwards),
            extra_pod_selectors=args.pod_selectors(fn, extra_pod_selectors),
            trigger_mode=_optional_trigger_mode(fn, trigger_mode),
            resource_deps=want_str_list(fn, "resource_deps", resource_deps),
            objects=object_list,
            auto_init=None if auto_init is None else want_bool(fn, "auto_init", auto_init),
            labels=args.labels(fn, labels),
            links=list(parse_links(fn, links)),
            pod_readiness=None if pod_readiness in (None, "") else args.choice(
                fn, "pod_readiness", pod_readiness, ("wait", "ignore")),
            discovery_strategy=None if discovery_strategy is None else args.choice(
                fn, "discovery_strategy", discovery_strategy, ("", "default", "selectors-only")),
        ))

    def _declare_kind(self, selector: args.ObjectSelector) -> KindInfo:
        for info in self.kinds:
            if info.selector == selector:
                return info
        info = KindInfo(selector)
        self.kinds.append(info)
        return info

    def _json_paths(self, fn: str, value: Any) -> list[str]:
        from devloop.k8s.images import parse_path

        paths = want_str_list(fn, "image_json_path", value)
        for path in paths:
            try:
                parse_path(path)
            except ValueError as exc:
                raise BuiltinError(f"{fn}: {exc}") from None
        return paths

    def k8s_kind(self, kind: Any, *, api_version: Any = None, image_json_path: Any = None,
                 image_object: Any = None, pod_readiness: Any = "") -> None:
        """k8s_kind(kind, api_version=None, image_json_path=[], pod_readiness=''): objects of
        this kind (case-insensitive regexes) are workloads; their images are at the given
        JSONPaths. pod_readiness 'wait'/'ignore' is the default for their resources."""
        fn = "k8s_kind"
        if image_object is not None:
            raise BuiltinError("k8s_kind: image_object is not supported; use image_json_path")
        selector = args.ObjectSelector.build(
            fn, kind=want_str(fn, "kind", kind, allow_blob=False),
            api_version=want_str(fn, "api_version", api_version or "", allow_blob=False))
        paths = self._json_paths(fn, image_json_path)
        readiness = args.choice(fn, "pod_readiness", pod_readiness or "", ("", "wait", "ignore"))
        info = self._declare_kind(selector)
        if paths:
            info.json_paths = paths
        if readiness:
            info.pod_readiness = readiness

    def k8s_image_json_path(self, paths: Any, kind: Any = None, name: Any = None,
                            namespace: Any = None, api_version: Any = None) -> None:
        """k8s_image_json_path(paths, kind=None, name=None, namespace=None, api_version=None):
        where images appear in the objects matched by these regexes (at least one of kind,
        name, namespace); matched objects become workloads."""
        fn = "k8s_image_json_path"
        fields = {k: want_str(fn, k, v or "", allow_blob=False) for k, v in (
            ("kind", kind), ("name", name), ("namespace", namespace),
            ("api_version", api_version))}
        if not (fields["kind"] or fields["name"] or fields["namespace"]):
            raise BuiltinError(f"{fn}: at least one of kind, name, or namespace must be "
                               "specified")
        info = self._declare_kind(args.ObjectSelector.build(fn, **fields))
        info.json_paths = self._json_paths(fn, paths)

    def k8s_custom_deploy(self, name: Any, apply_cmd: Any = None, delete_cmd: Any = None,
                          deps: Any = None, image_selector: Any = "", live_update: Any = None,
                          apply_dir: Any = "", apply_env: Any = None, apply_cmd_bat: Any = "",
                          delete_dir: Any = "", delete_env: Any = None,
                          delete_cmd_bat: Any = "", container_selector: Any = "",
                          image_deps: Any = None) -> None:
        """A resource deployed by commands: `apply_cmd` prints the YAML it applied, and
        `delete_cmd` removes it. Both are idempotent; `deps` are watched; `image_deps`
        are built first (TILT_IMAGE_i). Live update needs exactly one of image_selector /
        container_selector."""
        fn = "k8s_custom_deploy"
        name_s = want_str(fn, "name", name, allow_blob=False)
        if not name_s:
            raise BuiltinError(f"{fn}: name must not be empty")
        if apply_cmd in (None, "", []) and not apply_cmd_bat:
            raise BuiltinError(f"{fn}: apply_cmd must be specified")
        if delete_cmd in (None, "", []) and not delete_cmd_bat:
            raise BuiltinError(f"{fn}: delete_cmd must be specified")
        for param, value in (("apply_cmd_bat", apply_cmd_bat),
                             ("delete_cmd_bat", delete_cmd_bat)):
            if value is not None and not isinstance(value, str | list | tuple) \
                    and not is_blob(value):
                raise BuiltinError(f"{fn}: for parameter '{param}': got {type_name(value)}, "
                                   "want string or list of strings")
        apply_env_d = want_str_dict(fn, "apply_env", apply_env)
        delete_env_d = want_str_dict(fn, "delete_env", delete_env)
        apply_dir_s = self.ctx.abspath(want_str(fn, "apply_dir", apply_dir or "."))
        delete_dir_s = self.ctx.abspath(want_str(fn, "delete_dir", delete_dir or "."))
        dep_paths = tuple(self.ctx.abspath(d) for d in want_str_list(fn, "deps", deps))
        image_sel = want_str(fn, "image_selector", image_selector or "", allow_blob=False)
        container_sel = want_str(fn, "container_selector", container_selector or "",
                                 allow_blob=False)
        steps = parse_live_update(fn, live_update, self.ctx)
        if steps and bool(image_sel) == bool(container_sel):
            raise BuiltinError(f"{fn}: live_update requires exactly one of image_selector or "
                               "container_selector")
        if steps:
            # Tilt's live-update-only image target: named by the image selector, or by
            # the resource when containers are selected by name.
            target_ref = image_sel or f"k8s_custom_deploy:{name_s}"
            try:
                parse_image_ref(target_ref)
            except ValueError as exc:
                raise BuiltinError(f"{fn}: can't parse {target_ref!r}: {exc}") from None
            self.live_update_only.append(p.LiveUpdateOnly(
                ref=target_ref, resource=name_s, deps=dep_paths, live_update=steps,
                container_selector=container_sel))
        if any(r.name == name_s for r in self.custom):
            raise BuiltinError(f'{fn}: k8s_resource named "{name_s}" already exists')
        self.custom.append(p.Resource(
            name=name_s, type=p.ResourceType.CUSTOM_DEPLOY,
            apply_cmd=command_spec(fn, "apply_cmd", apply_cmd or apply_cmd_bat,
                                   env=apply_env_d, dir=apply_dir_s),
            delete_cmd=command_spec(fn, "delete_cmd", delete_cmd or delete_cmd_bat,
                                    env=delete_env_d, dir=delete_dir_s),
            deps=dep_paths,
            image_refs=tuple(want_str_list(fn, "image_deps", image_deps)),
            live_update=steps, image_selector=image_sel, container_selector=container_sel))

    def port_forward(self, local_port: Any, container_port: Any = None, name: Any = None,
                     link_path: Any = None, host: Any = None) -> dict[str, Any]:
        """port_forward(local_port, container_port=None, name=None, link_path=None,
        host=None): a port-forward for k8s_resource(port_forwards=...), shown as a link."""
        fn = "port_forward"
        local = want_int(fn, "local_port", local_port)
        remote = 0 if container_port is None else want_int(fn, "container_port", container_port)
        for param, port in (("local_port", local), ("container_port", remote)):
            if not 0 <= port <= 65535:
                raise BuiltinError(f"{fn}: for parameter '{param}': {port} is not in the valid "
                                   "range [0-65535]")
        return struct("port_forward", local_port=local, container_port=remote,
                      name=want_str(fn, "name", name or "", allow_blob=False),
                      link_path=want_str(fn, "link_path", link_path or "", allow_blob=False),
                      host=want_str(fn, "host", host or "", allow_blob=False))

    def allow_k8s_contexts(self, contexts: Any) -> None:
        """allow_k8s_contexts(contexts): kube contexts (besides local clusters) that may be
        deployed to. `allow_k8s_contexts(k8s_context())` allows the current one."""
        for item in want_str_list("allow_k8s_contexts", "contexts", contexts):
            if item not in self.allowed_contexts:
                self.allowed_contexts.append(item)

    def _dockerfile_text(self, target: p.ImageTarget) -> str:
        """A build's Dockerfile, for the unused-image check (docker_build() has already
        refused one that cannot be read; a file gone since reads as empty)."""
        if not isinstance(target, p.DockerBuild):
            return ""
        if target.dockerfile_contents is not None:
            return target.dockerfile_contents
        try:
            return self.ctx.read_limited(target.dockerfile, errors="replace")
        except (OSError, BuiltinError):
            return ""

    def _config(self) -> dict[str, Any]:
        if self._kubeconfig is None:
            self._kubeconfig = _kubeconfig(self.ctx.environ, self.ctx.max_read_bytes)
        return self._kubeconfig

    def k8s_context(self) -> str:
        """The current kube context: `--context` (DEVLOOP_CONTEXT) when given, else the
        kubeconfig's current-context ("" when there is none)."""
        override = self.ctx.environ.get(CONTEXT_ENV, "")
        if override:
            return override
        current: str = self._config()["current-context"]
        return current

    def k8s_namespace(self) -> str:
        """The namespace objects without one deploy to: `--namespace` (DEVLOOP_NAMESPACE)
        when given, as Tilt's flag overrides the context's; else the current kube context's
        namespace, "default" when it sets none."""
        override = self.ctx.environ.get(NAMESPACE_ENV, "")
        if override:
            return override
        current = self.k8s_context()
        for entry in self._config()["contexts"]:
            if entry.get("name") == current:
                namespace = (entry.get("context") or {}).get("namespace")
                if isinstance(namespace, str) and namespace:
                    return namespace
        return "default"

    # ------------------------------------------------------------------ assembly

    def contribute(self, draft: PlanDraft) -> None:
        draft.settings["allowed_k8s_contexts"] = tuple(self.allowed_contexts)
        draft.settings["k8s_context"] = self.k8s_context()
        draft.settings["k8s_namespace"] = self.k8s_namespace()
        draft.workload_names.update({k: v for k, v in self.workload_names.items()
                                     if isinstance(v, str)})
        taken = {r.name for r in draft.resources}
        entries = group(self.objects, self.kinds, self.options, self.custom, self.workload_names)
        builds = [i for i in draft.images if not isinstance(i, p.LiveUpdateOnly)]
        resources = to_resources(
            entries, self.objects, self.kinds, builds,
            default_trigger=draft.settings.get("default_trigger_mode", p.TriggerMode.AUTO))
        for resource in resources:
            if resource.name in taken:
                raise TiltfileError(f"k8s resource {resource.name!r} has the same name as "
                                    "another resource; rename it with k8s_resource(new_name=)")
        draft.resources.extend(resources)
        suppressed = draft.update_settings.get("suppress_unused_image_warnings") or ()
        for warning in unused_image_warnings(builds, draft.resources, self.objects,
                                             tuple(suppressed), self._dockerfile_text):
            self.ctx.warn(warning)
        for target in self.live_update_only:
            # Tilt refuses an image_selector that another build also declares; devloop
            # lets the build stand for it.
            if not any(image.ref == target.ref for image in draft.images):
                draft.images.append(target)
        check_live_updates(draft)


def check_live_updates(draft: PlanDraft) -> None:
    """Tilt's validateLiveUpdatesForManifests, once every resource is assembled: the live
    update of each deployed image may only sync from paths watched for that image or an
    image it is built on. Images no resource deploys are not checked."""
    images: dict[str, p.ImageTarget | p.LiveUpdateOnly] = {i.ref: i for i in draft.images}
    deployed: list[str] = []
    for resource in draft.resources:
        refs = ([i.image_ref for i in resource.injections]
                if resource.type is p.ResourceType.K8S else list(resource.image_refs))
        deployed.extend(ref for ref in refs if ref not in deployed)
    deployed.extend(i.ref for i in draft.images if isinstance(i, p.LiveUpdateOnly))
    for ref in deployed:
        image = images.get(ref)
        if image is None or not image.live_update:
            continue
        try:
            check_watched_paths(f"{image.kind}('{ref}')", image.live_update,
                                image_tree_paths(ref, images))
        except BuiltinError as exc:
            raise TiltfileError(str(exc)) from None
