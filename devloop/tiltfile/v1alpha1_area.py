"""The `v1alpha1` module: Tilt API objects (UIButton, Cmd, FileWatch...) built from a Tiltfile.

Object constructors (`v1alpha1.ui_button(name, ...)`) register an object, which lands in the
Plan as an ExtensionObject whose spec is the object's JSON in Tilt's API field names
(camelCase). Helper constructors (`v1alpha1.ui_component_location(...)`) return plain dicts
keyed by their parameter names, exactly what a Tiltfile may also write by hand; both forms
are accepted wherever a nested value is expected. Names and parameters follow Tilt's
`internal/tiltfile/v1alpha1/types.go`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devloop.model import plan as p
from devloop.tiltfile.context import (
    EvalContext,
    PlanDraft,
    is_blob,
    struct_kind,
    type_name,
    want_str,
)
from devloop.tiltfile.errors import BuiltinError
from devloop.tiltfile.settings_area import parse_go_duration

# A field: (parameter name, JSON name, kind). Kinds are scalar names ("str", "int", "bool",
# "str_list", "str_map", "path", "path_list", "duration", "time"), a type of TYPES, or
# "list:<type>".
Field = tuple[str, str, str]

_HANDLER: tuple[Field, ...] = (
    ("exec", "exec", "ExecAction"),
    ("http_get", "httpGet", "HTTPGetAction"),
    ("tcp_socket", "tcpSocket", "TCPSocketAction"),
)

TYPES: dict[str, tuple[Field, ...]] = {
    "ConfigMapDisableSource": (("name", "name", "str"), ("key", "key", "str")),
    "DisableSource": (("config_map", "configMap", "ConfigMapDisableSource"),
                      ("every_config_map", "everyConfigMap", "list:ConfigMapDisableSource")),
    "ExecAction": (("command", "command", "str_list"),),
    "Forward": (("local_port", "localPort", "int"), ("container_port", "containerPort", "int"),
                ("host", "host", "str"), ("name", "name", "str"), ("path", "path", "str")),
    "HTTPGetAction": (("path", "path", "str"), ("port", "port", "int"), ("host", "host", "str"),
                      ("scheme", "scheme", "str"),
                      ("http_headers", "httpHeaders", "list:HTTPHeader")),
    "HTTPHeader": (("name", "name", "str"), ("value", "value", "str")),
    "Handler": _HANDLER,
    "IgnoreDef": (("base_path", "basePath", "path"), ("patterns", "patterns", "str_list")),
    "KubernetesApplyCmd": (("args", "args", "str_list"), ("dir", "dir", "path"),
                           ("env", "env", "str_list")),
    "KubernetesDiscoveryTemplateSpec": (("extra_selectors", "extraSelectors",
                                         "list:LabelSelector"),),
    "KubernetesImageLocator": (("object_selector", "objectSelector", "ObjectSelector"),
                               ("path", "path", "str"),
                               ("object", "object", "KubernetesImageObjectDescriptor")),
    "KubernetesImageObjectDescriptor": (("repo_field", "repoField", "str"),
                                        ("tag_field", "tagField", "str")),
    "KubernetesWatchRef": (("uid", "uid", "str"), ("namespace", "namespace", "str"),
                           ("name", "name", "str")),
    "LabelSelector": (("match_labels", "matchLabels", "str_map"),
                      ("match_expressions", "matchExpressions",
                       "list:LabelSelectorRequirement")),
    "LabelSelectorRequirement": (("key", "key", "str"), ("operator", "operator", "str"),
                                 ("values", "values", "str_list")),
    "ObjectSelector": (("api_version_regexp", "apiVersionRegexp", "str"),
                       ("kind_regexp", "kindRegexp", "str"),
                       ("name_regexp", "nameRegexp", "str"),
                       ("namespace_regexp", "namespaceRegexp", "str")),
    "PodLogStreamTemplateSpec": (("since_time", "sinceTime", "time"),
                                 ("only_containers", "onlyContainers", "str_list"),
                                 ("ignore_containers", "ignoreContainers", "str_list")),
    "PortForwardTemplateSpec": (("forwards", "forwards", "list:Forward"),),
    "Probe": (*_HANDLER,
              ("initial_delay_seconds", "initialDelaySeconds", "int"),
              ("timeout_seconds", "timeoutSeconds", "int"),
              ("period_seconds", "periodSeconds", "int"),
              ("success_threshold", "successThreshold", "int"),
              ("failure_threshold", "failureThreshold", "int")),
    "RestartOnSpec": (("file_watches", "fileWatches", "str_list"),
                      ("ui_buttons", "uiButtons", "str_list")),
    "StartOnSpec": (("start_after", "startAfter", "time"), ("ui_buttons", "uiButtons",
                                                            "str_list")),
    "TCPSocketAction": (("port", "port", "int"), ("host", "host", "str")),
    "UIBoolInputSpec": (("default_value", "defaultValue", "bool"),
                        ("true_string", "trueString", "str"),
                        ("false_string", "falseString", "str")),
    "UIChoiceInputSpec": (("choices", "choices", "str_list"),),
    "UIComponentLocation": (("component_id", "componentID", "str"),
                            ("component_type", "componentType", "str")),
    "UIHiddenInputSpec": (("value", "value", "str"),),
    "UIInputSpec": (("name", "name", "str"), ("label", "label", "str"),
                    ("text", "text", "UITextInputSpec"), ("bool", "bool", "UIBoolInputSpec"),
                    ("hidden", "hidden", "UIHiddenInputSpec"),
                    ("choice", "choice", "UIChoiceInputSpec")),
    "UITextInputSpec": (("default_value", "defaultValue", "str"),
                        ("placeholder", "placeholder", "str")),
}

# Helper constructors: builtin name -> type. `probe` also takes Tilt's `handler` argument,
# whose actions it merges into the probe.
HELPERS: dict[str, str] = {
    "config_map_disable_source": "ConfigMapDisableSource", "disable_source": "DisableSource",
    "exec_action": "ExecAction", "forward": "Forward", "http_get_action": "HTTPGetAction",
    "http_header": "HTTPHeader", "handler": "Handler", "ignore_def": "IgnoreDef",
    "kubernetes_apply_cmd": "KubernetesApplyCmd",
    "kubernetes_discovery_template_spec": "KubernetesDiscoveryTemplateSpec",
    "kubernetes_image_locator": "KubernetesImageLocator",
    "kubernetes_image_object_descriptor": "KubernetesImageObjectDescriptor",
    "kubernetes_watch_ref": "KubernetesWatchRef", "label_selector": "LabelSelector",
    "label_selector_requirement": "LabelSelectorRequirement",
    "object_selector": "ObjectSelector",
    "pod_log_stream_template_spec": "PodLogStreamTemplateSpec",
    "port_forward_template_spec": "PortForwardTemplateSpec", "probe": "Probe",
    "restart_on_spec": "RestartOnSpec", "start_on_spec": "StartOnSpec",
    "tcp_socket_action": "TCPSocketAction", "ui_bool_input_spec": "UIBoolInputSpec",
    "ui_choice_input_spec": "UIChoiceInputSpec",
    "ui_component_location": "UIComponentLocation",
    "ui_hidden_input_spec": "UIHiddenInputSpec", "ui_input_spec": "UIInputSpec",
    "ui_text_input_spec": "UITextInputSpec",
}


@dataclass(frozen=True)
class ObjectType:
    kind: str
    plural: str
    fields: tuple[Field, ...]


OBJECTS: dict[str, ObjectType] = {
    "cmd": ObjectType("Cmd", "cmds", (
        ("args", "args", "str_list"), ("dir", "dir", "path"), ("env", "env", "str_list"),
        ("readiness_probe", "readinessProbe", "Probe"),
        ("restart_on", "restartOn", "RestartOnSpec"), ("start_on", "startOn", "StartOnSpec"),
        ("disable_source", "disableSource", "DisableSource"))),
    # A ConfigMap has no spec; its spec_json holds {"data": {...}}.
    "config_map": ObjectType("ConfigMap", "configmaps", (("data", "data", "str_map"),)),
    "extension": ObjectType("Extension", "extensions", (
        ("repo_name", "repoName", "str"), ("repo_path", "repoPath", "str"),
        ("args", "args", "str_list"))),
    "extension_repo": ObjectType("ExtensionRepo", "extensionrepos", (
        ("url", "url", "str"), ("ref", "ref", "str"), ("load_host", "loadHost", "str"),
        ("git_subpath", "gitSubpath", "str"))),
    "file_watch": ObjectType("FileWatch", "filewatches", (
        ("watched_paths", "watchedPaths", "path_list"), ("ignores", "ignores", "list:IgnoreDef"),
        ("disable_source", "disableSource", "DisableSource"))),
    "kubernetes_apply": ObjectType("KubernetesApply", "kubernetesapplys", (
        ("yaml", "yaml", "str"), ("image_maps", "imageMaps", "str_list"),
        ("image_locators", "imageLocators", "list:KubernetesImageLocator"),
        ("timeout", "timeout", "duration"),
        ("kubernetes_discovery_template_spec", "kubernetesDiscoveryTemplateSpec",
         "KubernetesDiscoveryTemplateSpec"),
        ("port_forward_template_spec", "portForwardTemplateSpec", "PortForwardTemplateSpec"),
        ("pod_log_stream_template_spec", "podLogStreamTemplateSpec",
         "PodLogStreamTemplateSpec"),
        ("discovery_strategy", "discoveryStrategy", "str"),
        ("disable_source", "disableSource", "DisableSource"),
        ("apply_cmd", "applyCmd", "KubernetesApplyCmd"),
        ("restart_on", "restartOn", "RestartOnSpec"),
        ("delete_cmd", "deleteCmd", "KubernetesApplyCmd"), ("cluster", "cluster", "str"))),
    "kubernetes_discovery": ObjectType("KubernetesDiscovery", "kubernetesdiscoverys", (
        ("watches", "watches", "list:KubernetesWatchRef"),
        ("extra_selectors", "extraSelectors", "list:LabelSelector"),
        ("port_forward_template_spec", "portForwardTemplateSpec", "PortForwardTemplateSpec"),
        ("pod_log_stream_template_spec", "podLogStreamTemplateSpec",
         "PodLogStreamTemplateSpec"),
        ("cluster", "cluster", "str"))),
    "ui_button": ObjectType("UIButton", "uibuttons", (
        ("location", "location", "UIComponentLocation"), ("text", "text", "str"),
        ("icon_name", "iconName", "str"), ("icon_svg", "iconSVG", "str"),
        ("disabled", "disabled", "bool"),
        ("requires_confirmation", "requiresConfirmation", "bool"),
        ("show_inputs_as_modal", "showInputsAsModal", "bool"),
        ("inputs", "inputs", "list:UIInputSpec"))),
}


class _Invalid(Exception):
    """A nested value is wrong; the message says where, relative to the parameter."""


def _bind(fn: str, params: list[str], args: tuple[Any, ...], kwargs: dict[str, Any],
          required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Starlark-style argument binding with Tilt-like messages."""
    if len(args) > len(params):
        raise BuiltinError(f"{fn}: got {len(args)} arguments, want at most {len(params)}")
    values = dict(zip(params, args, strict=False))
    for key, value in kwargs.items():
        if key not in params:
            raise BuiltinError(f"{fn}: unexpected keyword argument '{key}'")
        if key in values:
            raise BuiltinError(f"{fn}: got multiple values for parameter '{key}'")
        values[key] = value
    for key in required:
        if key not in values:
            raise BuiltinError(f"{fn}: missing argument for {key}")
    return values


class V1Alpha1Area:
    """v1alpha1.* object and helper constructors."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.objects: list[p.ExtensionObject] = []
        self._names: dict[str, set[str]] = {}

    def builtins(self) -> Mapping[str, Any]:
        out: dict[str, Any] = {}
        for name, type_ in HELPERS.items():
            out[f"v1alpha1.{name}"] = self._helper(f"v1alpha1.{name}", type_)
        for name, obj in OBJECTS.items():
            out[f"v1alpha1.{name}"] = self._constructor(f"v1alpha1.{name}", obj)
        return out

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def contribute(self, draft: PlanDraft) -> None:
        draft.extension_objects.extend(self.objects)

    # -- builtins
    def _helper(self, fn: str, type_: str) -> Callable[..., dict[str, Any]]:
        fields = TYPES[type_]
        params = [f[0] for f in fields] + (["handler"] if type_ == "Probe" else [])

        def helper(*args: Any, **kwargs: Any) -> dict[str, Any]:
            values = _bind(fn, params, args, kwargs)
            handler = values.pop("handler", None)
            if handler is not None:
                values = {**self._checked(fn, "handler", "Handler", handler), **values}
            result: dict[str, Any] = {}
            for param, value in values.items():
                kind = next(f[2] for f in fields if f[0] == param)
                try:
                    self._convert(kind, value)
                except _Invalid as exc:
                    raise BuiltinError(f"{fn}: for parameter '{param}': {exc}") from None
                result[param] = self._resolved(kind, value)
            return result

        helper.__name__ = helper.__qualname__ = fn
        helper.__doc__ = f"{fn}({', '.join(params)}): a {type_} value (a dict)."
        return helper

    def _constructor(self, fn: str, obj: ObjectType) -> Callable[..., None]:
        params = ["name", "labels", "annotations"] + [f[0] for f in obj.fields]

        def constructor(*args: Any, **kwargs: Any) -> None:
            values = _bind(fn, params, args, kwargs, required=("name",))
            self._register(fn, obj, values)

        constructor.__name__ = constructor.__qualname__ = fn
        constructor.__doc__ = (f"{fn}({', '.join(params)}): registers a {obj.kind} object "
                               "with the session.")
        return constructor

    def _register(self, fn: str, obj: ObjectType, values: dict[str, Any]) -> None:
        name = want_str(fn, "name", values["name"], allow_blob=False)
        if not name:
            raise BuiltinError(f"{fn}: metadata.name: Required value: name is required")
        labels = self._string_map(fn, "labels", values.get("labels"))
        annotations = self._string_map(fn, "annotations", values.get("annotations"))
        body: dict[str, Any] = {}
        for param, json_name, kind in obj.fields:
            value = values.get(param)
            if param == "dir" and value is None:
                value = ""  # Tilt's Cmd dir defaults to the Tiltfile's directory
            if value is None:
                continue
            try:
                body[json_name] = self._convert(kind, value)
            except _Invalid as exc:
                raise BuiltinError(f"{fn}: for parameter '{param}': {exc}") from None
        seen = self._names.setdefault(obj.kind, set())
        if name in seen:
            raise BuiltinError(f'{fn}: {obj.plural} "{name}" already registered')
        seen.add(name)
        if obj.kind in ("ExtensionRepo", "Extension"):
            self.ctx.declared_objects[(obj.kind, name)] = body  # later ext:// loads use it
        self.objects.append(p.ExtensionObject(
            kind=obj.kind, name=name, spec_json=json.dumps(body, sort_keys=True),
            labels=tuple(sorted(labels.items())), annotations=tuple(sorted(annotations.items()))))

    # -- values
    def _string_map(self, fn: str, param: str, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        try:
            converted: dict[str, str] = self._convert("str_map", value)
        except _Invalid as exc:
            raise BuiltinError(f"{fn}: for parameter '{param}': {exc}") from None
        return converted

    def _checked(self, fn: str, param: str, type_: str, value: Any) -> dict[str, Any]:
        try:
            self._convert(type_, value)
        except _Invalid as exc:
            raise BuiltinError(f"{fn}: for parameter '{param}': {exc}") from None
        return {k: self._resolved(self._kind_of(type_, k), v) for k, v in value.items()}

    @staticmethod
    def _kind_of(type_: str, param: str) -> str:
        return next(f[2] for f in TYPES[type_] if f[0] == param)

    def _resolved(self, kind: str, value: Any) -> Any:
        """The value a helper returns: as given, with relative paths made absolute (they are
        relative to the file that built the value, as in Tilt)."""
        if kind == "path":
            return self.ctx.abspath(_text(value))
        if kind == "path_list":
            return [self.ctx.abspath(_text(v)) for v in _sequence(value)]
        if kind in TYPES and isinstance(value, dict):
            return {k: self._resolved(self._kind_of(kind, k), v) for k, v in value.items()}
        if kind.startswith("list:") and isinstance(value, list | tuple):
            return [self._resolved(kind[5:], v) for v in value]
        return value

    def _convert(self, kind: str, value: Any) -> Any:
        """Check `value` against `kind` and return its API JSON form; raises _Invalid."""
        if kind in TYPES:
            return self._convert_object(kind, value)
        if kind.startswith("list:"):
            items = []
            for index, item in enumerate(_sequence(value)):
                try:
                    items.append(self._convert(kind[5:], item))
                except _Invalid as exc:
                    raise _Invalid(f"at index {index}: {exc}") from None
            return items
        return self._convert_scalar(kind, value)

    def _convert_object(self, type_: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or struct_kind(value) is not None:
            raise _Invalid(f"got {type_name(value)}, want dict ({type_})")
        out: dict[str, Any] = {}
        fields = {f[0]: f for f in TYPES[type_]}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Invalid(f"key must be string, got {type_name(key)}")
            if key not in fields:
                raise _Invalid(f"unexpected attribute name: {key} (want one of "
                               f"{', '.join(fields)})")
            if item is None:
                continue
            _, json_name, kind = fields[key]
            try:
                out[json_name] = self._convert(kind, item)
            except _Invalid as exc:
                raise _Invalid(f"{key}: {exc}") from None
        return out

    def _convert_scalar(self, kind: str, value: Any) -> Any:
        if kind in ("str", "time"):
            return _text(value)
        if kind == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise _Invalid(f"got {type_name(value)}, want int")
        if kind == "bool":
            if isinstance(value, bool):
                return value
            raise _Invalid(f"got {type_name(value)}, want bool")
        if kind == "str_list":
            if isinstance(value, str):
                return [value]
            return [_text(v) for v in _sequence(value)]
        if kind == "str_map":
            if not isinstance(value, dict) or struct_kind(value) is not None:
                raise _Invalid(f"got {type_name(value)}, want dict of strings")
            return {_text(k): _text(v) for k, v in value.items()}
        if kind == "path":
            return self.ctx.abspath(_text(value))
        if kind == "path_list":
            if isinstance(value, str):
                return [self.ctx.abspath(value)]
            return [self.ctx.abspath(_text(v)) for v in _sequence(value)]
        if kind == "duration":
            try:
                seconds = parse_go_duration("", "", value)
            except BuiltinError as exc:
                raise _Invalid(str(exc).split(": ", 2)[-1]) from None
            return value if isinstance(value, str) else f"{seconds:g}s"
        raise AssertionError(f"unknown field kind {kind}")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if is_blob(value):
        text: str = value["__text"]
        return text
    raise _Invalid(f"got {type_name(value)}, want string")


def _sequence(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    raise _Invalid(f"got {type_name(value)}, want list")
