"""Image builtins: docker_build, custom_build, default_registry and the live update steps.

Each call declares one image target; at the end of evaluation they go to the Plan in
declaration order, before any resource is assembled, so that Kubernetes and Compose can
match their image references against them. Then, like Tilt, a docker_build whose Dockerfile
names another image of this Tiltfile (`FROM base`, `COPY --from=base`) depends on it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from devloop.k8s import images as image_match
from devloop.model import dockerfile as dockerfile_syntax
from devloop.model import plan as p
from devloop.model.images import ImageRef, is_registry_host, parse_image_ref
from devloop.tiltfile.context import (
    EvalContext,
    PlanDraft,
    is_blob,
    type_name,
    want_bool,
    want_str,
    want_str_dict,
    want_str_list,
)
from devloop.tiltfile.errors import BuiltinError
from devloop.tiltfile.live_update import LiveUpdateSteps, parse_live_update

# ---------------------------------------------------------------------------- the area


def _str_or_list(fn: str, param: str, value: Any) -> tuple[str, ...]:
    """Tilt's parseValuesToStrings: a string or a list of strings, none with newlines."""
    values = want_str_list(fn, param, value)
    for item in values:
        if "\n" in item:
            raise BuiltinError(f"{fn}: {param} cannot contain newlines; found {param}: {item!r}")
    return tuple(values)


def _command(fn: str, param: str, value: Any) -> tuple[tuple[str, ...], bool]:
    """A string runs in a shell (`sh -c`), a list runs as argv; empty is ((), False)."""
    if value is None:
        return (), False
    if isinstance(value, str) or is_blob(value):
        text = want_str(fn, param, value)
        return (("sh", "-c", text), True) if text else ((), False)
    if isinstance(value, list | tuple):
        return tuple(want_str_list(fn, param, value)), False
    raise BuiltinError(f"{fn}: for parameter '{param}': got {type_name(value)}, "
                       "want string or list of strings")


def _container_args(fn: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise BuiltinError(f"{fn}: for parameter 'container_args': got {type_name(value)}, "
                           "want list of strings")
    return tuple(want_str_list(fn, "container_args", value))


class DockerArea:
    """docker_build, custom_build, default_registry, and sync/run/... for live_update."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.images: list[p.ImageTarget] = []
        self._declared: list[tuple[ImageRef, str]] = []
        self.registry: dict[str, Any] = {}
        self.steps = LiveUpdateSteps(ctx)
        # Dockerfile texts by path, read when docker_build() is called.
        self._dockerfiles: dict[str, str] = {}

    def builtins(self) -> Mapping[str, Any]:
        return {"docker_build": self.docker_build, "custom_build": self.custom_build,
                "default_registry": self.default_registry, **self.steps.builtins()}

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def contribute(self, draft: PlanDraft) -> None:
        refs = [image.ref for image in self.images]
        for n, image in enumerate(self.images):
            if isinstance(image, p.DockerBuild):
                text = image.dockerfile_contents
                if text is None:
                    text = self._dockerfiles.get(image.dockerfile, "")
                deps = dockerfile_image_deps(text, dict(image.build_args),
                                             refs, own=image.ref)
                self.images[n] = dataclasses.replace(image, image_deps=tuple(deps))
        draft.images.extend(self.images)
        draft.settings.update(self.registry)

    # -- helpers
    def _ref(self, fn: str, ref: Any) -> ImageRef:
        text = want_str(fn, "ref", ref, allow_blob=False)
        try:
            parsed = parse_image_ref(text)
        except ValueError as exc:
            raise BuiltinError(f"{fn}: Argument 1 (ref): can't parse {text!r}: {exc}") from None
        for other, _ in self._declared:
            if other.name == parsed.name and other.tag == parsed.tag:
                raise BuiltinError(f"{fn}: Image for ref {text!r} has already been defined")
        return parsed

    def _declare(self, parsed: ImageRef, target: p.ImageTarget) -> None:
        self._declared.append((parsed, target.ref))
        self.images.append(target)

    # -- builtins
    def docker_build(self, ref: Any, context: Any, build_args: Any = None,
                     dockerfile: Any = None, dockerfile_contents: Any = None,
                     live_update: Any = None, match_in_env_vars: Any = False,
                     ignore: Any = None, only: Any = None, entrypoint: Any = None,
                     target: Any = "", ssh: Any = None, network: Any = "",
                     secret: Any = None, extra_tag: Any = None, container_args: Any = None,
                     cache_from: Any = None, pull: Any = False, platform: Any = "",
                     extra_hosts: Any = None, cache: Any = None) -> None:
        """docker_build(ref, context, ...): build `ref` with Docker from `context` (a directory
        relative to this file). `dockerfile` (default context/Dockerfile, relative to this
        file) or `dockerfile_contents` (string or Blob, not both). `build_args` are
        --build-arg pairs; `target` the stage; `ssh`, `secret`, `extra_tag`, `cache_from`,
        `extra_hosts` take a string or a list; `only`/`ignore` filter the context with
        dockerignore patterns (`only` takes real paths, no '*'); `entrypoint` (string = shell
        form, list = exec form) and `container_args` override the container's command;
        `match_in_env_vars` also injects the image into env var values; `live_update` is a
        list of steps whose syncs must be inside `context`. The Dockerfile is watched."""
        fn = "docker_build"
        parsed = self._ref(fn, ref)
        context_dir = self.ctx.abspath(want_str(fn, "context", context, allow_blob=False))
        args = want_str_dict(fn, "build_args", build_args)
        if dockerfile is not None and dockerfile_contents is not None:
            raise BuiltinError(f"{fn}: Cannot specify both dockerfile and dockerfile_contents "
                               "keyword arguments")
        contents: str | None = None
        if dockerfile_contents is not None:
            if not isinstance(dockerfile_contents, str) and not is_blob(dockerfile_contents):
                raise BuiltinError(f"{fn}: for parameter 'dockerfile_contents': got "
                                   f"{type_name(dockerfile_contents)}, want string or blob")
            contents = want_str(fn, "dockerfile_contents", dockerfile_contents)
            dockerfile_path = os.path.join(context_dir, "Dockerfile")
        else:
            if dockerfile is None:
                dockerfile_path = os.path.join(context_dir, "Dockerfile")
            else:
                dockerfile_path = self.ctx.abspath(
                    want_str(fn, "dockerfile", dockerfile, allow_blob=False))
            # Recorded even when missing: creating the file later reloads the Tiltfile.
            self.ctx.record_read(dockerfile_path)
            try:
                # Read now, through the capped reader: the image dependencies come from it.
                self._dockerfiles[dockerfile_path] = self.ctx.read_limited(dockerfile_path,
                                                                           errors="replace")
            except (FileNotFoundError, IsADirectoryError):
                raise BuiltinError(f"{fn}: dockerfile not found: {dockerfile_path}") from None
            except BuiltinError as exc:
                raise BuiltinError(f"{fn}: dockerfile: {exc}") from None
            except OSError as exc:
                raise BuiltinError(f"{fn}: cannot read dockerfile {dockerfile_path}: "
                                   f"{exc.strerror}") from None
        # Docker reads the context's .dockerignore; a change to it changes the build.
        self.ctx.record_read(os.path.join(context_dir, ".dockerignore"))
        only_paths = _str_or_list(fn, "only", only)
        for path in only_paths:
            if "*" in path:
                raise BuiltinError(f"{fn}: 'only' does not support '*' file globs. "
                                   f"Must be a real path: {path}")
        extra_tags = _str_or_list(fn, "extra_tag", extra_tag)
        for tag in extra_tags:
            try:
                parse_image_ref(tag)
            except ValueError as exc:
                raise BuiltinError(f"{fn}: Argument extra_tag={tag!r} not a valid image "
                                   f"reference: {exc}") from None
        if cache is not None:
            self.ctx.warn("docker_build(cache=...) is obsolete and ignored; "
                          "use cache_from or live_update instead")
        entry, _ = _command(fn, "entrypoint", entrypoint)
        image = p.DockerBuild(
            ref=want_str(fn, "ref", ref), context=context_dir, dockerfile=dockerfile_path,
            dockerfile_contents=contents, build_args=tuple(args.items()),
            target=want_str(fn, "target", target, allow_blob=False),
            only=only_paths, ignore=_str_or_list(fn, "ignore", ignore), entrypoint=entry,
            live_update=parse_live_update(fn, live_update, self.ctx),
            match_in_env_vars=want_bool(fn, "match_in_env_vars", match_in_env_vars),
            platform=want_str(fn, "platform", platform, allow_blob=False),
            network=want_str(fn, "network", network, allow_blob=False),
            ssh=_str_or_list(fn, "ssh", ssh), secret=_str_or_list(fn, "secret", secret),
            extra_tag=extra_tags, cache_from=_str_or_list(fn, "cache_from", cache_from),
            pull=want_bool(fn, "pull", pull),
            container_args=_container_args(fn, container_args),
            extra_hosts=_str_or_list(fn, "extra_hosts", extra_hosts),
        )
        self._declare(parsed, image)

    def custom_build(self, ref: Any, command: Any = "", deps: Any = None, tag: Any = "",
                     disable_push: Any = False, skips_local_docker: Any = False,
                     live_update: Any = None, match_in_env_vars: Any = False,
                     ignore: Any = None, entrypoint: Any = None, command_bat: Any = "",
                     outputs_image_ref_to: Any = "", container_args: Any = None,
                     env: Any = None, dir: Any = "", image_deps: Any = None,
                     command_bat_val: Any = None) -> None:
        """custom_build(ref, command, deps, ...): build `ref` by running `command` (a string
        runs with `sh -c`, a list as argv) in `dir` (default: this file's directory) with
        `env` added; the command gets EXPECTED_REF and friends and must produce that image
        (`tag` fixes the tag; `outputs_image_ref_to` names a file where the command writes
        the ref it built instead). `deps` (files/directories, relative to this file) are
        watched and bound the live update syncs. `disable_push` skips the push,
        `skips_local_docker` says the image never lands in the local Docker. `image_deps`
        are refs of other images built first. `command_bat` (and its older name
        `command_bat_val`) is the Windows form: like Tilt off Windows, checked and unused."""
        fn = "custom_build"
        parsed = self._ref(fn, ref)
        _command(fn, "command_bat_val", command_bat_val)
        argv, shell = _command(fn, "command", command)
        _command(fn, "command_bat", command_bat)
        if not argv:
            raise BuiltinError(f"{fn}: Argument 2 (command) can't be empty")
        # No deps is allowed (Tilt >= 0.17.6): nothing is watched, the build runs once.
        dep_paths = [self.ctx.abspath(d) for d in want_str_list(fn, "deps", deps)]
        tag_text = want_str(fn, "tag", tag, allow_blob=False)
        outputs = want_str(fn, "outputs_image_ref_to", outputs_image_ref_to, allow_blob=False)
        if tag_text and outputs:
            raise BuiltinError(f"{fn}: Cannot specify both tag= and outputs_image_ref_to=")
        deps_refs = want_str_list(fn, "image_deps", image_deps)
        for dep in deps_refs:
            try:
                parse_image_ref(dep)
            except ValueError as exc:
                raise BuiltinError(f"{fn}: image_deps: can't parse {dep!r}: {exc}") from None
        dir_text = "" if dir is None else want_str(fn, "dir", dir, allow_blob=False)
        entry, _ = _command(fn, "entrypoint", entrypoint)
        image = p.CustomBuild(
            ref=want_str(fn, "ref", ref), command=argv, shell=shell, deps=tuple(dep_paths),
            tag=tag_text, skips_local_docker=want_bool(fn, "skips_local_docker",
                                                       skips_local_docker),
            disable_push=want_bool(fn, "disable_push", disable_push),
            outputs_image_ref_to=self.ctx.abspath(outputs) if outputs else "",
            live_update=parse_live_update(fn, live_update, self.ctx),
            ignore=_str_or_list(fn, "ignore", ignore), entrypoint=entry,
            match_in_env_vars=want_bool(fn, "match_in_env_vars", match_in_env_vars),
            env=tuple(sorted(want_str_dict(fn, "env", env).items())),
            dir=self.ctx.abspath(dir_text) if dir_text else self.ctx.current_dir(),
            image_deps=tuple(deps_refs), container_args=_container_args(fn, container_args),
        )
        self._declare(parsed, image)

    def default_registry(self, host: Any, host_from_cluster: Any = None,
                         single_name: Any = "") -> None:
        """default_registry(host, host_from_cluster=None, single_name=''): push every built
        image to `host` (its name with '/' and '@' turned into '_', under `host/`);
        `host_from_cluster` is how the cluster reaches that registry; `single_name` pushes
        every image to one repository with the image name in the tag. Once per Tiltfile;
        `default_registry('')` sets nothing, as in Tilt."""
        fn = "default_registry"
        if self.registry:
            raise BuiltinError(f"{fn}: default registry already defined")
        host_text = want_str(fn, "host", host, allow_blob=False)
        if not host_text and not host_from_cluster and not single_name:
            # Tilt: an empty registry is no registry, and a later call may still set one
            # (Tiltfiles pass `default_registry(os.getenv('REGISTRY', ''))`).
            return
        from_cluster = "" if host_from_cluster is None else want_str(
            fn, "host_from_cluster", host_from_cluster, allow_blob=False)
        for param, value in (("host", host_text), ("host_from_cluster", from_cluster)):
            if param == "host" and not value:
                raise BuiltinError(f"{fn}: for parameter 'host': must not be empty when "
                                   "host_from_cluster or single_name is given")
            if value and not is_registry_host(value):
                raise BuiltinError(f"{fn}: validating defaultRegistry: invalid {param} "
                                   f"{value!r}: want a host[:port][/path] like "
                                   "'localhost:5000' or 'gcr.io/project'")
        self.registry = {"default_registry": host_text,
                         "default_registry_host_from_cluster": from_cluster,
                         "default_registry_single_name": want_str(
                             fn, "single_name", single_name, allow_blob=False)}



# ---------------------------------------------------------------------------- image deps

def dockerfile_image_deps(text: str, build_args: Mapping[str, str], refs: Sequence[str], *,
                          own: str) -> list[str]:
    """Refs (from `refs`, never `own`) that the Dockerfile's FROM and COPY --from name, with
    ARGs declared before the first FROM substituted (build args winning over defaults), as
    Tilt's dockerfile.FindImages does. Stage names are not images."""
    others = [ref for ref in refs if ref != own]
    deps: list[str] = []
    for use in dockerfile_syntax.image_uses(text, build_args):
        if use.keyword not in dockerfile_syntax.DEPENDENCY_KEYWORDS or not use.ref:
            continue
        match = image_match.first_match(others, use.ref)
        if match is not None and match not in deps:
            deps.append(match)
    return deps
