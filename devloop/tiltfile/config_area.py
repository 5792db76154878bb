"""The `config` module: user settings from Tiltfile args and tilt_config.json, enabled resources.

Tilt's model: the Tiltfile defines settings (`config.define_string("env")`), and
`config.parse()` reads `tilt_config.json` in the directory of the executing Tiltfile
(normally the main one), overlays the args given
after `--` on the command line (parsed like Go's pflag: `--name value`, `--name=value`,
`--flag` for bools, positional args going to the one setting defined with `args=True`), and
returns a dict of the settings that were set.

Enabled resources, in the Plan (`enabled_resources`): None means every resource; a tuple
names the resources to enable (the engine adds their resource_deps); an empty tuple means
none (`config.clear_enabled_resources()`). Without config.parse or set_enabled_resources,
positional Tiltfile args name the resources to enable, as in Tilt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devloop.tiltfile.context import EvalContext, PlanDraft, type_name, want_bool, want_str
from devloop.tiltfile.errors import BuiltinError
from devloop.tiltfile.files_area import builtin_name

CONFIG_FILE_NAME = "tilt_config.json"
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _go_type(value: Any) -> str:
    """The Go type name a JSON value decodes to, for Tilt-like messages."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "<nil>"


@dataclass
class _Value:
    """One setting's value while parsing; `kind` is string, string_list, bool or object."""

    kind: str
    value: Any = None
    is_set: bool = False

    def set_text(self, text: str) -> None:
        """Set from a command-line word (Go's flag.Value.Set)."""
        if self.kind == "string_list":
            self.value = [*(self.value or []), text]
        elif self.is_set:
            raise BuiltinError(f"{self.kind} settings can only be specified once. multiple "
                               f"values found (last value: {text})")
        elif self.kind == "string":
            self.value = text
        elif self.kind == "bool":
            if text not in _TRUE + _FALSE:
                raise BuiltinError(f'strconv.ParseBool: parsing "{text}": invalid syntax')
            self.value = text in _TRUE
        else:
            try:
                self.value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise BuiltinError(f"decoding JSON, got {text!r}: {exc}") from None
        self.is_set = True

    def set_json(self, data: Any) -> None:
        """Set from tilt_config.json; null leaves the setting unset."""
        if data is None:
            return
        if self.kind == "string_list":
            if not isinstance(data, list):
                raise BuiltinError("expected array")
            for item in data:
                if not isinstance(item, str):
                    raise BuiltinError(f"expected string, got {_go_type(item)}")
            self.value = list(data)
        elif self.kind == "string" and not isinstance(data, str):
            raise BuiltinError(f"expected string, found {_go_type(data)}")
        elif self.kind == "bool" and not isinstance(data, bool):
            raise BuiltinError(f"expected bool, found {_go_type(data)}")
        else:
            self.value = data
        self.is_set = True


@dataclass(frozen=True)
class _Setting:
    name: str
    kind: str
    usage: str


@dataclass
class _State:
    settings: dict[str, _Setting] = field(default_factory=dict)
    positional: str = ""
    parse_called: bool = False
    parse_dir: str = ""
    enabled: tuple[str, ...] | None = None
    disable_all: bool = False


class ConfigArea:
    """config.define_*, config.parse, config.(set|clear)_enabled_resources and constants."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.state = _State()

    def builtins(self) -> Mapping[str, Any]:
        return {
            "config.define_string": self._definer("config.define_string", "string"),
            "config.define_string_list": self._definer("config.define_string_list",
                                                       "string_list"),
            "config.define_bool": self._definer("config.define_bool", "bool"),
            "config.define_object": self._definer("config.define_object", "object"),
            "config.parse": self.parse,
            "config.set_enabled_resources": self.set_enabled_resources,
            "config.clear_enabled_resources": self.clear_enabled_resources,
            "config.main_path": self.ctx.main_path,
            "config.main_dir": self.ctx.main_dir,
            "config.tilt_subcommand": self.ctx.subcommand,
        }

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def contribute(self, draft: PlanDraft) -> None:
        state = self.state
        if state.disable_all:
            draft.enabled_resources = ()
        elif state.enabled:
            draft.enabled_resources = state.enabled
        elif self.ctx.args and not state.parse_called:
            draft.enabled_resources = tuple(self.ctx.args)
        else:
            draft.enabled_resources = None

    # -- definitions
    def _definer(self, fn: str, kind: str) -> Callable[..., None]:
        def define(name: Any, args: Any = False, usage: Any = "") -> None:
            self._define(fn, kind, name, args, usage)

        define.__name__ = define.__qualname__ = fn
        define.__doc__ = (f"{fn}(name, args=False, usage=''): declares a {kind} setting; with "
                          "args=True it takes the positional Tiltfile args.")
        return define

    def _define(self, fn: str, kind: str, name: Any, args: Any, usage: Any) -> None:
        name = want_str(fn, "name", name, allow_blob=False)
        positional = want_bool(fn, "args", args)
        usage = want_str(fn, "usage", usage, allow_blob=False)
        state = self.state
        if not name:
            raise BuiltinError(f"{fn}: 'name' is required")
        if state.parse_called:
            raise BuiltinError(f"{fn} cannot be called after config.parse is called")
        if name in state.settings:
            raise BuiltinError(f"{fn}: {name} defined multiple times")
        if positional:
            if state.positional:
                raise BuiltinError(f"{fn}: both {name} and {state.positional} are defined as "
                                   "positional args")
            state.positional = name
        state.settings[name] = _Setting(name, kind, usage)

    # -- parsing
    @builtin_name("config.parse")
    def parse(self) -> dict[str, Any]:
        """config.parse() -> dict of the settings set in tilt_config.json or the Tiltfile args
        (args win). Settings that were not set are absent: use cfg.get(name, default)."""
        directory = self.ctx.current_dir()
        if self.state.parse_dir and self.state.parse_dir != directory:
            raise BuiltinError("config.parse: can only be called from one Tiltfile working "
                               f"directory per run. It was called from {self.state.parse_dir} "
                               f"and {directory}")
        self.state.parse_called = True
        self.state.parse_dir = directory
        path = os.path.join(directory, CONFIG_FILE_NAME)
        self.ctx.record_read(path)
        values = {name: _Value(s.kind) for name, s in self.state.settings.items()}
        try:
            self._read_file(path, values)
        except BuiltinError as exc:
            raise BuiltinError(f"config.parse: {exc}") from None
        from_args = {name: _Value(s.kind) for name, s in self.state.settings.items()}
        try:
            self._parse_args(list(self.ctx.args), from_args)
        except BuiltinError as exc:
            self.ctx.print(self._usage())
            raise BuiltinError(f"config.parse: {exc}") from None
        result: dict[str, Any] = {}
        for name in self.state.settings:
            chosen = from_args[name] if from_args[name].is_set else values[name]
            if chosen.is_set:
                result[name] = chosen.value
        return result

    def _read_file(self, path: str, values: dict[str, _Value]) -> None:
        try:
            text = self.ctx.read_limited(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise BuiltinError(f"error opening {path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BuiltinError(f"error parsing json from {path}: {exc}") from None
        if not isinstance(data, dict):
            raise BuiltinError(f"error parsing json from {path}: want an object, got "
                               f"{_go_type(data)}")
        for key, item in data.items():
            if key not in values:
                raise BuiltinError(f"{path} specified unknown setting name '{key}'")
            try:
                values[key].set_json(item)
            except BuiltinError as exc:
                raise BuiltinError(f"{path} specified invalid value for setting {key}: "
                                   f"{exc}") from None

    def _parse_args(self, args: list[str], values: dict[str, _Value]) -> None:
        """Go pflag semantics: flags and positional args may be interleaved; `--` ends flags;
        no single-dash shorthands exist."""
        flags = {n: v for n, v in values.items() if n != self.state.positional}
        positional: list[str] = []
        index = 0
        while index < len(args):
            word = args[index]
            index += 1
            if word == "--":
                positional.extend(args[index:])
                break
            if word.startswith("--"):
                name, equals, text = word[2:].partition("=")
                if name == "help":
                    raise BuiltinError("pflag: help requested")
                if name not in flags:
                    raise BuiltinError(f"unknown flag: --{name}")
                value = flags[name]
                if not equals:
                    if value.kind == "bool":
                        text = "true"
                    elif index < len(args):
                        text = args[index]
                        index += 1
                    else:
                        raise BuiltinError(f"flag needs an argument: --{name}")
                try:
                    value.set_text(text)
                except BuiltinError as exc:
                    raise BuiltinError(f'invalid argument "{text}" for "--{name}" flag: '
                                       f"{exc}") from None
            elif word.startswith("-") and len(word) > 1:
                if word[1] == "h":
                    raise BuiltinError("pflag: help requested")
                raise BuiltinError(f"unknown shorthand flag: '{word[1]}' in {word}")
            else:
                positional.append(word)
        if not positional:
            return
        if not self.state.positional:
            raise BuiltinError("positional args were specified, but none were expected (no "
                               "setting defined with args=True)")
        target = values[self.state.positional]
        for word in positional:
            try:
                target.set_text(word)
            except BuiltinError as exc:
                raise BuiltinError(f"error setting positional arg {self.state.positional}: "
                                   f"{exc}") from None

    def _usage(self) -> str:
        lines = ["Usage:"]
        for setting in self.state.settings.values():
            if setting.name == self.state.positional:
                continue
            kind = {"string": " string", "string_list": " stringArray", "bool": "",
                    "object": " object"}[setting.kind]
            lines.append(f"      --{setting.name}{kind}\t{setting.usage}".rstrip())
        return "\n".join(lines)

    # -- enabled resources
    @builtin_name("config.set_enabled_resources")
    def set_enabled_resources(self, resources: Any) -> None:
        """config.set_enabled_resources(resources): enable only these resources (and their
        dependencies); an empty list enables all. Overrides the positional Tiltfile args."""
        if not isinstance(resources, list | tuple):
            raise BuiltinError(f"config.set_enabled_resources: for parameter 'resources': got "
                               f"{type_name(resources)}, want list")
        names: list[str] = []
        for item in resources:
            if not isinstance(item, str):
                raise BuiltinError("config.set_enabled_resources: resources must be a list of "
                                   f"string, got {type_name(item)}")
            names.append(item)
        self.state.enabled = tuple(names)
        self.state.disable_all = False

    @builtin_name("config.clear_enabled_resources")
    def clear_enabled_resources(self) -> None:
        """config.clear_enabled_resources(): start with every resource disabled (a later
        set_enabled_resources enables some again)."""
        self.state.disable_all = True
