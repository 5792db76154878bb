"""Docker Compose builtins: docker_compose() loads a project, dc_resource() configures a service.

The compose files are parsed here (PyYAML), with Compose's variable interpolation, file
merging and profiles, into a `ComposeProject` and one COMPOSE resource per service, in file
order. Running the services is the engine's job.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from devloop.model import plan as p
from devloop.model.images import parse_image_ref, refs_match
from devloop.tiltfile.context import (
    EvalContext,
    PlanDraft,
    is_blob,
    type_name,
    want_bool,
    want_str,
    want_str_list,
)
from devloop.tiltfile.errors import BuiltinError, Location, TiltfileError
from devloop.tiltfile.links import parse_links
from devloop.tiltfile.local_area import parse_labels, parse_trigger_mode

# Service keys whose lists accumulate across files instead of being replaced (as Compose).
_APPEND_KEYS = frozenset({"ports", "expose", "external_links", "dns", "dns_search", "tmpfs",
                          "volumes", "devices", "secrets", "configs", "env_file",
                          "cap_add", "cap_drop", "extra_hosts", "volumes_from", "links"})
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class _Options:
    """What dc_resource() set for one service."""

    trigger_mode: p.TriggerMode = p.TriggerMode.AUTO
    resource_deps: list[str] = field(default_factory=list)
    links: list[p.Link] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    auto_init: bool = True
    infer_links: bool = True
    image: str = ""


@dataclass
class _Project:
    name: str
    project_dir: str
    config_paths: list[str]
    env_file: str
    profiles: tuple[str, ...]
    wait: bool
    location: Location | None
    services: dict[str, dict[str, Any]] = field(default_factory=dict)


# ---------------------------------------------------------------------------- parsing


def normalize_project_name(name: str) -> str:
    """Compose's rule: lower case, only [a-z0-9_-], starting with a letter or digit."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def parse_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments, `export`, quotes)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


class _Interpolator:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR:+alt}, $$."""

    def __init__(self, env: Mapping[str, str], warn: Callable[[str], None]) -> None:
        self.env = env
        self.warn = warn

    def value(self, item: Any) -> Any:
        if isinstance(item, str):
            return self.text(item)
        if isinstance(item, dict):
            return {key: self.value(val) for key, val in item.items()}
        if isinstance(item, list):
            return [self.value(val) for val in item]
        return item

    def text(self, text: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char != "$" or i + 1 >= len(text):
                out.append(char)
                i += 1
                continue
            following = text[i + 1]
            if following == "$":
                out.append("$")
                i += 2
            elif following == "{":
                end = self._closing(text, i + 2)
                out.append(self._braced(text[i + 2:end]))
                i = end + 1
            elif match := _VAR_NAME.match(text, i + 1):
                out.append(self._lookup(match.group(0)))
                i = match.end()
            else:
                out.append(char)
                i += 1
        return "".join(out)

    @staticmethod
    def _closing(text: str, start: int) -> int:
        depth = 1
        for index in range(start, len(text)):
            if text[index] == "{":
                depth += 1
            elif text[index] == "}":
                depth -= 1
                if depth == 0:
                    return index
        raise ValueError(f"invalid interpolation format for {text!r}: missing '}}'")

    def _lookup(self, name: str) -> str:
        if name not in self.env:
            self.warn(f'docker_compose: the "{name}" variable is not set. '
                      "Defaulting to a blank string.")
        return self.env.get(name, "")

    def _braced(self, body: str) -> str:
        match = _VAR_NAME.match(body)
        if not match:
            raise ValueError(f"invalid interpolation format for '${{{body}}}'")
        name, rest = match.group(0), body[match.end():]
        if not rest:
            return self._lookup(name)
        value = self.env.get(name)
        colon = rest.startswith(":")
        operator, argument = (rest[1], rest[2:]) if colon else (rest[0], rest[1:])
        missing = value is None or (colon and value == "")
        if operator == "-":
            return self.text(argument) if missing else str(value)
        if operator == "+":
            return "" if missing else self.text(argument)
        if operator == "?":
            if missing:
                raise ValueError(f"required variable {name} is missing a value: "
                                 f"{self.text(argument)}")
            return str(value)
        raise ValueError(f"invalid interpolation format for '${{{body}}}'")


def _merge(base: Any, override: Any, path: tuple[str, ...] = ()) -> Any:
    """Compose's multi-file merge: mappings merge, most lists are replaced by the later
    file, and the list keys in _APPEND_KEYS of a service accumulate."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge(base[key], value, (*path, str(key))) if key in base else value
        return out
    if (isinstance(base, list) and isinstance(override, list) and len(path) == 3
            and path[0] == "services" and path[2] in _APPEND_KEYS):
        return base + [item for item in override if item not in base]
    return override


def published_ports(service: Mapping[str, Any]) -> list[int]:
    """Host ports a service publishes (ranges and container-only ports are skipped)."""
    ports: list[int] = []
    for spec in service.get("ports") or []:
        published: Any = None
        if isinstance(spec, dict):
            published = spec.get("published")
        elif isinstance(spec, str):
            parts = spec.split("/", 1)[0].rsplit(":", 2)
            published = parts[-2] if len(parts) >= 2 else None
        if isinstance(published, int) or (isinstance(published, str)
                                          and published.isdigit()):
            port = int(published)
            if port and port not in ports:
                ports.append(port)
    return ports


def service_dependencies(service: Mapping[str, Any]) -> list[str]:
    """Services this one needs: depends_on, links, network_mode/volumes_from service:X."""
    deps: list[str] = []
    depends_on = service.get("depends_on") or []
    deps.extend(depends_on.keys() if isinstance(depends_on, dict) else depends_on)
    deps.extend(str(link).split(":", 1)[0] for link in service.get("links") or [])
    network = str(service.get("network_mode") or "")
    if network.startswith("service:"):
        deps.append(network.removeprefix("service:"))
    for source in service.get("volumes_from") or []:
        text = str(source)
        if not text.startswith("container:"):
            deps.append(text.removeprefix("service:").split(":", 1)[0])
    return [str(dep) for dep in deps]


def _yaml_error(path: str, exc: yaml.MarkedYAMLError) -> str:
    """`file:line:column: problem` for a YAML syntax error (the place of the problem, or
    of its context when the parser has none), on one line."""
    mark = exc.problem_mark or exc.context_mark
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
    problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
    context = " ".join(str(exc.context or "").split())
    if context and exc.problem:
        problem = f"{problem} ({context})"
    return f"{where}: {problem}"


def compose_build_ref(project: str, service: str) -> str:
    """The image target Tilt makes of a service's `build:` section: `<project>_<service>`."""
    return f"{project}_{service}"


def _active(service: Mapping[str, Any], profiles: tuple[str, ...]) -> bool:
    wanted = service.get("profiles") or []
    return not wanted or "*" in profiles or any(name in profiles for name in wanted)


# ---------------------------------------------------------------------------- the area


class ComposeArea:
    """docker_compose and dc_resource; one compose project per Tiltfile."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.project: _Project | None = None
        self.names: dict[str, str] = {}  # service -> resource name (dc_resource new_name)
        self.options: dict[str, _Options] = {}

    def builtins(self) -> Mapping[str, Any]:
        return {"dc_resource": self.dc_resource}

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        # Compose interpolates ${VARS} from the environment, so it sees os.environ changes.
        return {"docker_compose": self.docker_compose}

    # -- docker_compose
    def docker_compose(self, environ: dict[str, str], configPaths: Any,  # noqa: N803
                       env_file: Any = None, project_name: Any = "", profiles: Any = None,
                       wait: Any = False) -> None:
        """docker_compose(configPaths, env_file=None, project_name='', profiles=[],
        wait=False): load a Compose project from one or more files (paths relative to this
        file) or Blobs; every service becomes a resource named after it, in file order, with
        its depends_on as resource_deps. Later files override earlier ones. ${VARS} come from
        os.environ, then `env_file` (default: .env beside the first file). Only services
        without `profiles:` or in one of `profiles` (default $COMPOSE_PROFILES) are loaded.
        `project_name` defaults to the first file's directory name. `wait` makes `up` wait
        for healthy services. The files are watched. Calling it again adds files."""
        fn = "docker_compose"
        items = list(configPaths) if isinstance(configPaths, list | tuple) else [configPaths]
        paths: list[str] = []
        for item in items:
            if is_blob(item):
                paths.append(self._blob_file(want_str(fn, "configPaths", item)))
            elif isinstance(item, str):
                paths.append(self.ctx.abspath(item))
            elif item is not None:
                raise BuiltinError(f"{fn}: for parameter 'configPaths': expected blob | path "
                                   f"(string). Actual type: {type_name(item)}")
        if not paths:
            raise BuiltinError(f"{fn}: Nothing to compose")
        name = normalize_project_name(want_str(fn, "project_name", project_name,
                                               allow_blob=False))
        env_path = "" if env_file is None else self.ctx.abspath(
            want_str(fn, "env_file", env_file, allow_blob=False))
        selected = tuple(want_str_list(fn, "profiles", profiles)) if profiles is not None \
            else tuple(x for x in environ.get("COMPOSE_PROFILES", "").split(",") if x)
        project = self.project
        if project is None:
            first_file = next((path for path in paths if not self._is_temp(path)), "")
            project_dir = os.path.dirname(first_file) if first_file else self.ctx.current_dir()
            project = _Project(
                name=name or normalize_project_name(os.path.basename(project_dir)),
                project_dir=project_dir, config_paths=[], env_file=env_path,
                profiles=selected, wait=want_bool(fn, "wait", wait),
                location=self.ctx.location())
        elif name and name != project.name:
            raise BuiltinError(f"{fn}: only one Docker Compose project is supported; "
                               f"project {project.name!r} is already loaded")
        else:
            project.env_file = env_path or project.env_file
            if profiles is not None:
                project.profiles = selected
        project.config_paths.extend(path for path in paths if path not in project.config_paths)
        project.services = self._load(fn, project, environ)
        for service in project.services:
            self.names.setdefault(service, service)
            self.options.setdefault(service, _Options())
        self.project = project

    def _blob_file(self, text: str) -> str:
        """Compose needs files: a Blob is stored under a name derived from its content."""
        directory = os.path.join(tempfile.gettempdir(), "devloop-compose")
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, hashlib.sha256(text.encode()).hexdigest() + ".yml")
        if not os.path.exists(path):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        return path

    @staticmethod
    def _is_temp(path: str) -> bool:
        return os.path.dirname(path) == os.path.join(tempfile.gettempdir(), "devloop-compose")

    def _environment(self, fn: str, project: _Project, environ: Mapping[str, str]
                     ) -> dict[str, str]:
        dotenv = project.env_file or os.path.join(project.project_dir, ".env")
        values: dict[str, str] = {}
        if project.env_file or os.path.isfile(dotenv):
            self.ctx.record_read(dotenv)
            try:
                with open(dotenv, encoding="utf-8") as handle:
                    values = parse_dotenv(handle.read())
            except OSError as exc:
                raise BuiltinError(f"{fn}: env_file {dotenv}: {exc.strerror}") from None
        # Like Compose, the shell environment wins over the .env file.
        return {**values, **environ}

    def _load(self, fn: str, project: _Project, environ: Mapping[str, str]
              ) -> dict[str, dict[str, Any]]:
        interpolate = _Interpolator(self._environment(fn, project, environ), self.ctx.warn)
        merged: dict[str, Any] = {}
        for path in project.config_paths:
            if not self._is_temp(path):
                self.ctx.record_read(path)
            try:
                with open(path, encoding="utf-8") as handle:
                    loaded = yaml.safe_load(handle)
            except FileNotFoundError:
                raise BuiltinError(f"{fn}: file not found: {path}") from None
            except yaml.MarkedYAMLError as exc:
                raise BuiltinError(f"{fn}: {_yaml_error(path, exc)}") from None
            except (OSError, yaml.YAMLError) as exc:
                # One line: the evaluator reports the last line of a multi-line message.
                reason = " ".join(str(exc).split())
                raise BuiltinError(f"{fn}: cannot parse {path}: {reason}") from None
            if loaded is None:
                loaded = {}
            if not isinstance(loaded, dict) or not isinstance(loaded.get("services") or {},
                                                              dict):
                raise BuiltinError(f"{fn}: {path}: want a mapping with a 'services' mapping")
            try:
                loaded = interpolate.value(loaded)
            except ValueError as exc:
                raise BuiltinError(f"{fn}: {path}: {exc}") from None
            merged = _merge(merged, loaded)
        services: dict[str, dict[str, Any]] = {}
        for name, config in (merged.get("services") or {}).items():
            config = config or {}
            if not isinstance(config, dict):
                raise BuiltinError(f"{fn}: service {name!r}: want a mapping, "
                                   f"got {type_name(config)}")
            if not _active(config, project.profiles):
                continue
            image = config.get("image")
            if image is not None:
                try:
                    parse_image_ref(str(image))
                except ValueError as exc:
                    raise BuiltinError(f"{fn}: getting service {name}: Error parsing image "
                                       f"name {image!r}: {exc}") from None
            env_files = config.get("env_file") or []
            for entry in env_files if isinstance(env_files, list) else [env_files]:
                env_path = entry.get("path", "") if isinstance(entry, dict) else str(entry)
                if env_path:
                    self.ctx.record_read(os.path.join(project.project_dir, env_path))
            services[str(name)] = config
        return services

    # -- dc_resource
    def dc_resource(self, name: Any, trigger_mode: Any = None, resource_deps: Any = None,
                    links: Any = None, labels: Any = None, auto_init: Any = None,
                    project_name: Any = "", new_name: Any = "", infer_links: Any = None,
                    image: Any = None) -> None:
        """dc_resource(name, trigger_mode=..., resource_deps=[], links=[], labels=[],
        auto_init=True, project_name='', new_name='', infer_links=True): configure the
        resource of the Compose service `name` (after docker_compose()). `new_name` renames
        it; `infer_links=False` drops the localhost links of its published ports; `image`
        (legacy) names the image that Tilt builds for it."""
        fn = "dc_resource"
        name_text = want_str(fn, "name", name, allow_blob=False)
        if not name_text:
            raise BuiltinError(f"{fn}: `name` must not be empty")
        project_text = want_str(fn, "project_name", project_name, allow_blob=False)
        service = next((svc for svc, res in self.names.items() if res == name_text), None)
        if (service is None or self.project is None
                or (project_text and normalize_project_name(project_text) != self.project.name)):
            found = "; ".join(self.names.values())
            raise BuiltinError(f"{fn}: no Docker Compose service found with name "
                               f"{name_text!r}. Found these instead: {found}")
        options = self.options[service]
        if trigger_mode is not None:
            options.trigger_mode = parse_trigger_mode(fn, trigger_mode)
        for dep in want_str_list(fn, "resource_deps", resource_deps):
            if dep not in options.resource_deps:
                options.resource_deps.append(dep)
        options.links.extend(parse_links(fn, links))
        options.labels.extend(label for label in parse_labels(fn, labels)
                              if label not in options.labels)
        if auto_init is not None:
            options.auto_init = want_bool(fn, "auto_init", auto_init)
        if infer_links is not None:
            options.infer_links = want_bool(fn, "infer_links", infer_links)
        if image is not None:
            image_text = want_str(fn, "image", image, allow_blob=False)
            try:
                parse_image_ref(image_text)
            except ValueError as exc:
                raise BuiltinError(f"{fn}: image arg {image_text!r}: {exc}") from None
            options.image = image_text
        renamed = want_str(fn, "new_name", new_name, allow_blob=False)
        if renamed and renamed != name_text:
            if renamed in self.names.values():
                raise BuiltinError(f"{fn}: resource {renamed!r} already exists")
            self.names[service] = renamed
            for other in self.options.values():
                other.resource_deps = [renamed if dep == name_text else dep
                                       for dep in other.resource_deps]

    # -- assembly
    def contribute(self, draft: PlanDraft) -> None:
        project = self.project
        if project is None:
            return
        draft.compose = p.ComposeProject(
            config_paths=tuple(project.config_paths), project_name=project.name,
            env_file=project.env_file, profiles=project.profiles,
            services_json=json.dumps(project.services, default=str),
            project_dir=project.project_dir, wait=project.wait)
        taken = {resource.name for resource in draft.resources}
        self._compose_builds(draft, project)
        for service, config in project.services.items():
            name = self.names[service]
            if name in taken:
                raise TiltfileError(f"docker_compose: resource name {name!r} of service "
                                    f"{service!r} is already used by another resource",
                                    project.location)
            taken.add(name)
            draft.resources.append(self._resource(service, name, config, draft, project))

    def _compose_builds(self, draft: PlanDraft, project: _Project) -> None:
        """An image target for each `build:` section that no docker_build/custom_build
        replaces, named as Tilt names it (the service's image, else `<project>_<service>`);
        Compose builds it (`docker compose build`)."""
        for service, config in project.services.items():
            build = config.get("build")
            if build is None:
                continue
            options = self.options[service]
            candidates = [options.image or str(config.get("image") or "")] if (
                options.image or config.get("image")) else [
                f"{project.name}-{service}", compose_build_ref(project.name, service)]
            if any(refs_match(image.ref, candidate) for image in draft.images
                   for candidate in candidates):
                continue
            spec = build if isinstance(build, dict) else {"context": build}
            context = os.path.normpath(os.path.join(project.project_dir,
                                                    str(spec.get("context") or ".")))
            args = spec.get("args") or {}
            pairs = (tuple((str(k), "" if v is None else str(v)) for k, v in args.items())
                     if isinstance(args, dict) else tuple(
                         (str(a).partition("=")[0], str(a).partition("=")[2]) for a in args))
            inline = spec.get("dockerfile_inline")
            draft.images.append(p.DockerBuild(
                ref=candidates[0] if len(candidates) == 1 else compose_build_ref(
                    project.name, service), context=context,
                dockerfile=os.path.join(context, str(spec.get("dockerfile") or "Dockerfile")),
                dockerfile_contents=str(inline) if inline is not None else None,
                build_args=pairs, target=str(spec.get("target") or ""),
                kind="docker_compose"))

    def _resource(self, service: str, name: str, config: Mapping[str, Any],
                  draft: PlanDraft, project: _Project) -> p.Resource:
        options = self.options[service]
        deps = {self.names.get(dep, dep) for dep in service_dependencies(config)}
        deps.update(options.resource_deps)
        links = list(options.links)
        if options.infer_links:
            links += [p.Link(f"http://localhost:{port}/") for port in published_ports(config)]
        return p.Resource(
            name=name, type=p.ResourceType.COMPOSE, labels=tuple(options.labels),
            resource_deps=tuple(sorted(deps)), trigger_mode=options.trigger_mode,
            auto_init=options.auto_init, links=tuple(links),
            image_refs=self._image_refs(service, config, options, draft, project),
            compose_service=service, compose_config_hash=hashlib.sha256(json.dumps(
                config, sort_keys=True, default=str).encode()).hexdigest()[:16])

    @staticmethod
    def _image_refs(service: str, config: Mapping[str, Any], options: _Options,
                    draft: PlanDraft, project: _Project) -> tuple[str, ...]:
        if options.image:
            candidates = [options.image]
        elif config.get("image"):
            candidates = [str(config["image"])]
        else:
            # The name Compose gives an image it builds (v2 and v1 spelling, the latter
            # also the name of the image target of an unreplaced `build:` section).
            candidates = [f"{project.name}-{service}", compose_build_ref(project.name, service)]
        return tuple(dict.fromkeys(
            image.ref for image in draft.images
            if any(refs_match(image.ref, candidate) for candidate in candidates)))
