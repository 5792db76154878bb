"""What builtins share during one evaluation: call sites, files read, paths, output.

Each builtin area (docker, k8s, local, ...) is a class built per evaluation with this
context; it registers its builtins and keeps its own declarations. Nothing is module state.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from devloop.model import plan as p
from devloop.tiltfile.errors import BuiltinError, Location

# Structs are dicts with this key (Python objects with attributes cannot cross into
# Starlark). Its name is random per process, so a user's dict (decoded JSON, a literal)
# can never be taken for a struct; it starts with `__` like every internal key.
STRUCT_TYPE_KEY = f"__dl_type_{secrets.token_hex(8)}__"
DEFAULT_MAX_READ_BYTES = 64 * 1024 * 1024


def open_regular(path: str) -> BinaryIO:
    """`path` opened for reading in binary, if it is a regular file. Opened without
    blocking, so that a FIFO with no writer is refused instead of waiting forever.
    Raises BuiltinError for a device, FIFO or socket, IsADirectoryError for a directory."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(info.st_mode):
            raise BuiltinError(f"{path} is not a regular file (a device, pipe or socket "
                               "cannot be read)")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_limited(path: str, limit: int = DEFAULT_MAX_READ_BYTES, *,
                 errors: str = "strict") -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes. A device, FIFO or
    socket (`/dev/zero`, `/dev/stdin`) is refused: reading it whole never ends or blocks.
    Raises BuiltinError for those, for larger files and for text that is not UTF-8
    (unless `errors="replace"`); FileNotFoundError and IsADirectoryError pass through for
    the caller to word."""
    with open_regular(path) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise BuiltinError(f"{path} is larger than {limit // 2**20} MB, the limit for a "
                           "file read whole (DEVLOOP_TILTFILE_MAX_READ_MB)")
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError as exc:
        raise BuiltinError(f"{path} is not UTF-8 text (invalid byte at offset "
                           f"{exc.start})") from None


@dataclass
class EvalContext:
    main_path: str
    args: tuple[str, ...] = ()
    subcommand: str = "up"
    extension_repo: str = ""
    extension_dir: str = ""
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    files_read: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    max_read_bytes: int = DEFAULT_MAX_READ_BYTES
    # Called with each printed line as it is printed (the child process streams them).
    on_output: Callable[[str], None] | None = None
    # Spec of each ExtensionRepo / Extension declared so far, by (kind, name): `ext://`
    # loads resolve through them (loader.py).
    declared_objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _locations: list[Location] = field(default_factory=list)
    _modules: list[str] = field(default_factory=list)

    @property
    def main_dir(self) -> str:
        return os.path.dirname(os.path.abspath(self.main_path))

    # -- call sites
    def push_location(self, text: str) -> None:
        path, line, column = text.rsplit(":", 2)
        self._locations.append(Location(path, int(line), int(column)))

    def pop_location(self) -> None:
        if self._locations:
            self._locations.pop()

    def location(self) -> Location | None:
        return self._locations[-1] if self._locations else None

    # -- the file whose top level is running (a load/include pushes, its end pops)
    def enter_module(self, path: str) -> None:
        self._modules.append(path)

    def exit_module(self) -> None:
        if self._modules:
            self._modules.pop()

    def current_file(self) -> str:
        """The file whose top level is executing (load/include paths resolve against it)."""
        return self._modules[-1] if self._modules else self.main_path

    def current_dir(self) -> str:
        """Relative paths resolve like Tilt's: against the directory of the file whose top
        level is executing. A helper function defined in a loaded file and called from the
        Tiltfile resolves against the Tiltfile's directory; an included Tiltfile's own
        top-level calls resolve against its directory."""
        return os.path.dirname(self._modules[-1]) if self._modules else self.main_dir

    def abspath(self, path: str) -> str:
        return os.path.normpath(os.path.join(self.current_dir(), os.path.expanduser(path)))

    # -- files
    def record_read(self, path: str) -> None:
        absolute = os.path.abspath(path)
        if absolute not in self.files_read:
            self.files_read.append(absolute)

    def read_text(self, path: str, what: str) -> str:
        absolute = self.abspath(path)
        self.record_read(absolute)
        try:
            return read_limited(absolute, self.max_read_bytes)
        except BuiltinError as exc:
            raise BuiltinError(f"{what}: {exc}") from None
        except FileNotFoundError:
            raise BuiltinError(f"{what}: file not found: {absolute}") from None
        except IsADirectoryError:
            raise BuiltinError(f"{what}: {absolute} is a directory, want a file") from None
        except OSError as exc:
            raise BuiltinError(f"{what}: cannot read {absolute}: {exc.strerror}") from None

    def read_limited(self, path: str, *, errors: str = "strict") -> str:
        """`read_limited` with this evaluation's size limit."""
        return read_limited(path, self.max_read_bytes, errors=errors)

    def print(self, text: str) -> None:
        self.output.append(text)
        if self.on_output is not None:
            self.on_output(text)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)


@dataclass
class PlanDraft:
    """The Plan under construction; areas fill it in, in a fixed order, after evaluation."""

    tiltfile: str
    images: list[p.ImageTarget | p.LiveUpdateOnly] = field(default_factory=list)
    resources: list[p.Resource] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    update_settings: dict[str, Any] = field(default_factory=dict)
    ci_settings: dict[str, Any] = field(default_factory=dict)
    watch_ignore: list[str] = field(default_factory=list)
    secret_settings: dict[str, Any] = field(default_factory=dict)
    enabled_resources: tuple[str, ...] | None = None
    compose: p.ComposeProject | None = None
    extension_objects: list[p.ExtensionObject] = field(default_factory=list)
    workload_names: dict[str, str] = field(default_factory=dict)


class Area(Protocol):
    """One area of builtins. `builtins` may use dotted names ("os.path.join") for modules."""

    def builtins(self) -> Mapping[str, Any]: ...

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        """Builtins that receive the Tiltfile's current os.environ as first argument."""
        ...

    def contribute(self, draft: PlanDraft) -> None: ...


# ---------------------------------------------------------------------------- value helpers


def struct(kind: str, **fields: Any) -> dict[str, Any]:
    """A Starlark struct value (see prelude.star): a dict with a type marker."""
    value = dict(fields)
    value[STRUCT_TYPE_KEY] = kind
    return value


def struct_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get(STRUCT_TYPE_KEY)
        return kind if isinstance(kind, str) else None
    return None


def blob(text: str) -> dict[str, Any]:
    return struct("blob", __text=text)


def is_blob(value: Any) -> bool:
    return struct_kind(value) == "blob"


def type_name(value: Any) -> str:
    kind = struct_kind(value)
    if kind:
        return kind
    return {str: "string", bool: "bool", int: "int", float: "float", list: "list",
            tuple: "tuple", dict: "dict", type(None): "NoneType", set: "set"}.get(
                type(value), type(value).__name__)


def want_str(fn: str, param: str, value: Any, allow_blob: bool = True) -> str:
    if isinstance(value, str):
        return value
    if allow_blob and is_blob(value):
        text: str = value["__text"]
        return text
    raise BuiltinError(f"{fn}: for parameter '{param}': got {type_name(value)}, want string")


def want_str_list(fn: str, param: str, value: Any) -> list[str]:
    """A string or a list of strings (Tilt accepts both almost everywhere)."""
    if value is None:
        return []
    if isinstance(value, str) or is_blob(value):
        return [want_str(fn, param, value)]
    if isinstance(value, list | tuple):
        return [want_str(fn, param, item) for item in value]
    raise BuiltinError(
        f"{fn}: for parameter '{param}': got {type_name(value)}, want string or list of strings")


def want_bool(fn: str, param: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise BuiltinError(f"{fn}: for parameter '{param}': got {type_name(value)}, want bool")


def want_int(fn: str, param: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise BuiltinError(f"{fn}: for parameter '{param}': got {type_name(value)}, want int")


def want_str_dict(fn: str, param: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or struct_kind(value):
        raise BuiltinError(f"{fn}: for parameter '{param}': got {type_name(value)}, want dict")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise BuiltinError(f"{fn}: for parameter '{param}': keys must be strings")
        out[key] = item if isinstance(item, str) else want_str(fn, f"{param}[{key}]", item)
    return out


def command_spec(fn: str, param: str, value: Any, *, env: Mapping[str, str] | None = None,
                 dir: str = "") -> p.CommandSpec | None:
    """Tilt's command argument: a string runs in a shell, a list runs as argv."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str) or is_blob(value):
        text = want_str(fn, param, value)
        return p.CommandSpec(("sh", "-c", text), True, tuple(sorted((env or {}).items())), dir)
    argv = want_str_list(fn, param, value)
    return p.CommandSpec(tuple(argv), False, tuple(sorted((env or {}).items())), dir)
