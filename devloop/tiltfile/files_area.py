"""Tiltfile builtins that read files and convert data: read_*, decode_*, encode_*, blob, listdir.

Every file a builtin reads (or was asked to read and found missing) is recorded with
`ctx.record_read`, so a change to it reloads the Tiltfile, as in Tilt.

Numbers decoded from JSON and YAML keep their integer type (Tilt, going through Go's JSON
decoder, turns every number into a float); Starlark compares 3 == 3.0 as equal, and integers
are what `range()`, `%d` and port numbers need.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import yaml

from devloop.tiltfile.context import (
    EvalContext,
    PlanDraft,
    blob,
    is_blob,
    struct_kind,
    type_name,
    want_bool,
    want_str,
)
from devloop.tiltfile.errors import BuiltinError

_MISSING = object()
F = TypeVar("F", bound=Callable[..., Any])


def builtin_name(name: str) -> Callable[[F], F]:
    """Name a method after the builtin it implements, so that errors (including Python's own
    "unexpected keyword argument") say `os.path.join`, not `OsArea.join`."""

    def decorate(function: F) -> F:
        function.__name__ = function.__qualname__ = name
        return function

    return decorate


# ---------------------------------------------------------------------------- YAML dialect


class _Loader(yaml.SafeLoader):
    """YAML as Kubernetes tooling reads it: dates stay strings, keys become strings."""


# Timestamps would become Python dates, which Starlark cannot hold; Go's YAML-to-JSON
# conversion keeps them as strings too.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Dumper(yaml.SafeDumper):
    """Plain block YAML: no anchors for repeated values, multi-line strings as literals."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _plain(value: Any) -> Any:
    """Decoded data as Starlark values: string keys, no dates or bytes."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else _scalar_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _scalar_key(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def yaml_documents(text: str, source: str = "") -> list[Any]:
    """The non-empty documents of a YAML stream (Tilt skips empty ones)."""
    try:
        documents = [_plain(d) for d in yaml.load_all(text, Loader=_Loader)]
    except yaml.YAMLError as exc:
        where = f" from {source}" if source else ""
        raise BuiltinError(f"error parsing YAML{where}: {_one_line(exc)}") from None
    return [d for d in documents if d is not None]


def _single_document(fn: str, documents: list[Any]) -> Any:
    if not documents:
        return None
    if len(documents) > 1:
        raise BuiltinError(f"{fn}: expected a yaml document but found a yaml stream (documents "
                           "separated by `---`). use decode_yaml_stream instead to decode a "
                           "yaml stream")
    return documents[0]


def _json_value(text: str, source: str = "") -> Any:
    try:
        return _plain(json.loads(text))
    except json.JSONDecodeError as exc:
        where = f" from {source}" if source else ""
        raise BuiltinError(f"error parsing JSON{where}: {exc}") from None


def to_data(fn: str, value: Any) -> Any:
    """A Starlark value as plain JSON-able data; structs, blobs and sets are refused, as Tilt
    refuses everything but dicts with string keys, lists, strings, numbers, bools and None."""
    kind = struct_kind(value)
    if kind is not None:
        raise BuiltinError(f"{fn}: error converting object from starlark: unable to convert "
                           f"from starlark value, unsupported type {kind}")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [to_data(fn, item) for item in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise BuiltinError(
                    f"{fn}: error converting object from starlark: only string keys are "
                    f"supported in maps. found key {key!r} of type {type_name(key)}")
            out[key] = to_data(fn, item)
        return out
    raise BuiltinError(f"{fn}: error converting object from starlark: unable to convert from "
                       f"starlark value, unsupported type {type_name(value)}")


def dump_yaml(data: Any) -> str:
    if data is None:
        return "null\n"
    text: str = yaml.dump(data, Dumper=_Dumper, default_flow_style=False, sort_keys=True,
                          allow_unicode=True, width=1 << 30)
    # PyYAML ends a top-level scalar with an explicit document end marker; Tilt does not.
    return text.removesuffix("...\n")


# ---------------------------------------------------------------------------- the area


class FilesArea:
    """read_file, read_json, read_yaml(_stream), decode_*, encode_*, blob, listdir, watch_file."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx

    def builtins(self) -> Mapping[str, Any]:
        return {
            "read_file": self.read_file,
            "read_json": self.read_json,
            "read_yaml": self.read_yaml,
            "read_yaml_stream": self.read_yaml_stream,
            "decode_json": self.decode_json,
            "decode_yaml": self.decode_yaml,
            "decode_yaml_stream": self.decode_yaml_stream,
            "encode_json": self.encode_json,
            "encode_yaml": self.encode_yaml,
            "encode_yaml_stream": self.encode_yaml_stream,
            "blob": self.blob,
            "listdir": self.listdir,
            "watch_file": self.watch_file,
        }

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def contribute(self, draft: PlanDraft) -> None:
        """Reads are recorded as they happen; nothing is left for the Plan."""

    # -- helpers
    def _read(self, fn: str, paths: Any) -> tuple[str, str | None]:
        """(absolute path, contents or None when missing); the path is always recorded."""
        path = self.ctx.abspath(want_str(fn, "paths", paths))
        self.ctx.record_read(path)
        try:
            return path, self.ctx.read_limited(path)
        except FileNotFoundError:
            return path, None
        except IsADirectoryError:
            raise BuiltinError(f"{fn}: {path} is a directory, want a file") from None
        except BuiltinError as exc:
            raise BuiltinError(f"{fn}: {exc}") from None
        except OSError as exc:
            raise BuiltinError(f"{fn}: cannot read {path}: {exc.strerror}") from None

    @staticmethod
    def _text_arg(fn: str, param: str, value: Any) -> str:
        if isinstance(value, str) or is_blob(value):
            return want_str(fn, param, value)
        raise BuiltinError(f"{fn}: for parameter '{param}': got {type_name(value)}, "
                           "want string or blob")

    # -- reading files
    @builtin_name("read_file")
    def read_file(self, paths: Any, default: Any = None) -> dict[str, Any]:
        """read_file(paths, default=None) -> Blob: the file's contents. The file is watched;
        with a string `default`, a missing file yields a Blob of the default instead."""
        if default is not None and not isinstance(default, str):
            raise BuiltinError(f"read_file: for parameter 'default': got {type_name(default)}, "
                               "want string or None")
        path, text = self._read("read_file", paths)
        if text is None:
            if default is None:
                raise BuiltinError(f"read_file: file not found: {path}")
            text = default
        return blob(text)

    @builtin_name("read_json")
    def read_json(self, paths: Any, default: Any = _MISSING) -> Any:
        """read_json(paths, default=None): the file parsed as JSON. The file is watched; when
        it is missing and a default was given, the default is returned as is."""
        path, text = self._read("read_json", paths)
        if text is None:
            if default is _MISSING:
                raise BuiltinError(f"read_json: file not found: {path}")
            return default
        try:
            return _json_value(text, want_str("read_json", "paths", paths))
        except BuiltinError as exc:
            raise BuiltinError(f"read_json: {exc}") from None

    @builtin_name("read_yaml")
    def read_yaml(self, paths: Any, default: Any = _MISSING) -> Any:
        """read_yaml(paths, default=None): the file's single YAML document (None for an empty
        file; an error for a stream of several). Watched; a missing file yields `default`."""
        path, text = self._read("read_yaml", paths)
        if text is None:
            if default is _MISSING:
                raise BuiltinError(f"read_yaml: file not found: {path}")
            return default
        try:
            documents = yaml_documents(text, want_str("read_yaml", "paths", paths))
        except BuiltinError as exc:
            raise BuiltinError(f"read_yaml: {exc}") from None
        return _single_document("read_yaml", documents)

    @builtin_name("read_yaml_stream")
    def read_yaml_stream(self, paths: Any, default: Any = _MISSING) -> list[Any]:
        """read_yaml_stream(paths, default=None) -> list: every document of the file. Watched;
        a missing file yields `default`, which must be a list."""
        if default is not _MISSING and default is not None \
                and not isinstance(default, list | tuple):
            raise BuiltinError(f"read_yaml_stream: for parameter 'default': got "
                               f"{type_name(default)}, want list")
        path, text = self._read("read_yaml_stream", paths)
        if text is None:
            if default is _MISSING or default is None:
                raise BuiltinError(f"read_yaml_stream: file not found: {path}")
            return list(cast("list[Any] | tuple[Any, ...]", default))
        try:
            return yaml_documents(text, want_str("read_yaml_stream", "paths", paths))
        except BuiltinError as exc:
            raise BuiltinError(f"read_yaml_stream: {exc}") from None

    # -- decoding
    @builtin_name("decode_json")
    def decode_json(self, json: Any) -> Any:
        """decode_json(json): a string or Blob parsed as JSON."""
        text = self._text_arg("decode_json", "json", json)
        try:
            return _json_value(text)
        except BuiltinError as exc:
            raise BuiltinError(f"decode_json: {exc}") from None

    @builtin_name("decode_yaml")
    def decode_yaml(self, yaml: Any) -> Any:
        """decode_yaml(yaml): the single YAML document of a string or Blob (None if empty)."""
        text = self._text_arg("decode_yaml", "yaml", yaml)
        try:
            documents = yaml_documents(text)
        except BuiltinError as exc:
            raise BuiltinError(f"decode_yaml: {exc}") from None
        return _single_document("decode_yaml", documents)

    @builtin_name("decode_yaml_stream")
    def decode_yaml_stream(self, yaml: Any) -> list[Any]:
        """decode_yaml_stream(yaml) -> list: the non-empty documents of a YAML stream."""
        text = self._text_arg("decode_yaml_stream", "yaml", yaml)
        try:
            return yaml_documents(text)
        except BuiltinError as exc:
            raise BuiltinError(f"decode_yaml_stream: {exc}") from None

    # -- encoding
    @builtin_name("encode_json")
    def encode_json(self, obj: Any) -> str:
        """encode_json(obj) -> string: indented JSON with sorted keys (a string, not a Blob,
        as in Tilt). Supports dicts with string keys, lists, strings, numbers, bools, None."""
        data = to_data("encode_json", obj)
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @builtin_name("encode_yaml")
    def encode_yaml(self, obj: Any) -> dict[str, Any]:
        """encode_yaml(obj) -> Blob: one YAML document with sorted keys."""
        return blob(dump_yaml(to_data("encode_yaml", obj)))

    @builtin_name("encode_yaml_stream")
    def encode_yaml_stream(self, objs: Any) -> dict[str, Any]:
        """encode_yaml_stream(objs) -> Blob: a list of values as documents joined by `---`."""
        if not isinstance(objs, list | tuple):
            raise BuiltinError(f"encode_yaml_stream: for parameter 'objs': got "
                               f"{type_name(objs)}, want list")
        return blob("---\n".join(dump_yaml(to_data("encode_yaml_stream", o)) for o in objs))

    # -- misc
    @builtin_name("blob")
    def blob(self, input: Any) -> dict[str, Any]:
        """blob(input) -> Blob: wraps a string so builtins treat it as content, not a path."""
        if not isinstance(input, str):
            raise BuiltinError(f"blob: for parameter 'input': got {type_name(input)}, "
                               "want string")
        return blob(input)

    @builtin_name("listdir")
    def listdir(self, dir: Any, recursive: Any = False) -> list[str]:
        """listdir(dir, recursive=False) -> list of absolute file paths (directories are not
        listed; with recursive=True files in subdirectories are). The directory is watched;
        a missing directory lists as empty, as in Tilt."""
        root = self.ctx.abspath(want_str("listdir", "dir", dir, allow_blob=False))
        deep = want_bool("listdir", "recursive", recursive)
        self.ctx.record_read(root)
        files: list[str] = []

        def walk(directory: str) -> None:
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError:
                return
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if deep:
                        walk(entry.path)
                else:
                    files.append(entry.path)

        walk(root)
        return files

    @builtin_name("watch_file")
    def watch_file(self, paths: Any) -> None:
        """watch_file(paths): reload the Tiltfile when this file (or directory tree) changes;
        nothing is read."""
        self.ctx.record_read(self.ctx.abspath(want_str("watch_file", "paths", paths)))
