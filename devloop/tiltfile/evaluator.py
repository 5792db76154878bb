"""Evaluate a Tiltfile into a Plan: read and rewrite every file it loads, run, assemble."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import starlark_go

from devloop.tiltfile import plan as p
from devloop.tiltfile.context import DEFAULT_MAX_READ_BYTES, Area, EvalContext, PlanDraft
from devloop.tiltfile.errors import BuiltinError, Location, TiltfileError
from devloop.tiltfile.loader import ExtensionSettings, resolve
from devloop.tiltfile.program import Program
from devloop.tiltfile.source import RewrittenFile, missing_file, rewrite


@dataclass(frozen=True)
class Evaluation:
    plan: p.Plan
    output: tuple[str, ...]


def _syntax_check(path: str, text: str) -> None:
    """starlark-go's own parser decides what is valid Starlark; nothing runs here because
    resolution (which fails on every builtin name) happens before execution."""
    try:
        starlark_go.Starlark().exec(text, filename=path)
    except starlark_go.SyntaxError as exc:
        raise TiltfileError(f"syntax error: {exc.msg}",
                            Location(path, exc.line, exc.column)) from None
    except starlark_go.StarlarkError:
        pass


def _read_source(path: str, location: Location | None, ctx: EvalContext) -> str:
    ctx.record_read(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(ctx.max_read_bytes + 1)
    except FileNotFoundError:
        raise TiltfileError(f"file not found: {path}", location) from None
    except IsADirectoryError:
        raise TiltfileError(f"{path} is a directory, want a Starlark file", location) from None
    except OSError as exc:
        raise TiltfileError(f"cannot read {path}: {exc.strerror}", location) from None
    if len(data) > ctx.max_read_bytes:
        raise TiltfileError(f"{path} is larger than {ctx.max_read_bytes // 2**20} MB "
                            "(DEVLOOP_TILTFILE_MAX_READ_MB)", location)
    return _decode_source(path, data)


def _decode_source(path: str, data: bytes) -> str:
    """Source text, or an error at the line and column of the first byte that cannot be
    Starlark source (invalid UTF-8, a NUL byte)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        raise TiltfileError(f"invalid UTF-8 (byte 0x{data[exc.start]:02x})",
                            Location(path, line, column)) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise TiltfileError("NUL byte in source", Location(path, line, column))
    return text


def _rewrite_all(main: str, ctx: EvalContext, located: frozenset[str],
                 extensions: ExtensionSettings
                 ) -> tuple[list[RewrittenFile], dict[tuple[int, int], int]]:
    files: list[RewrittenFile] = []
    index_of: dict[str, int] = {}
    targets: dict[tuple[int, int], int] = {}
    pending: list[tuple[str, Location | None, str]] = [(main, None, "load")]
    while pending:
        path, location, kind = pending.pop(0)
        if path in index_of:
            continue
        index_of[path] = len(files)
        if kind != "load" and not os.path.exists(path):
            # Resolved before the run, but only an error if the include actually runs.
            ctx.record_read(path)
            files.append(missing_file(path, kind))
            continue
        text = _read_source(path, location, ctx)
        files.append(rewrite(path, text, located, _syntax_check))
        for spec in files[-1].loads:
            pending.append((resolve(spec.path, path, extensions, spec.location), spec.location,
                            spec.kind))
    for index, file in enumerate(files):
        for n, spec in enumerate(file.loads):
            targets[(index, n)] = index_of[resolve(spec.path, file.path, extensions,
                                                   spec.location)]
    _check_cycles(files, targets)
    return files, targets


def _check_cycles(files: list[RewrittenFile], targets: dict[tuple[int, int], int]) -> None:
    edges: dict[int, list[tuple[int, Location]]] = {}
    for (source, n), target in targets.items():
        edges.setdefault(source, []).append((target, files[source].loads[n].location))
    done: set[int] = set()

    def visit(node: int, stack: list[int]) -> None:
        if node in done:
            return
        for target, location in edges.get(node, []):
            if target in stack or target == node:
                chain = [files[i].path for i in stack[stack.index(target):]] + [
                    files[node].path, files[target].path] if target in stack else [
                    files[node].path, files[target].path]
                raise TiltfileError("cycle in load graph: " + " -> ".join(
                    dict.fromkeys(chain[:-1])) + " -> " + chain[-1], location)
            visit(target, stack + [node])
        done.add(node)

    visit(0, [])


def _wrap(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn BuiltinErrors into plain messages starlark-go reports with the call stack."""

    def builtin(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except BuiltinError as exc:
            raise RuntimeError(str(exc)) from None
        except MemoryError:
            raise RuntimeError("out of memory (DEVLOOP_TILTFILE_MEMORY_MB)") from None

    builtin.__name__ = getattr(function, "__name__", "builtin").lstrip("_") or "builtin"
    return builtin


def _globals(areas: list[Area], ctx: EvalContext,
             hooks: Mapping[str, Callable[..., Any]]) -> tuple[dict[str, Any], list[str], set[str]]:
    """Starlark globals, program lines that build modules and environ wrappers, and the
    names whose calls are located."""
    values: dict[str, Any] = dict(hooks)
    modules: dict[str, dict[str, Any]] = {}
    setup: list[str] = []
    located: set[str] = set()
    for area in areas:
        for name, value in area.builtins().items():
            wrapped = _wrap(value) if callable(value) else value
            if "." in name:
                module, _, rest = name.partition(".")
                modules.setdefault(module, {})[rest] = wrapped
            else:
                values[name] = wrapped
                if callable(value):
                    located.add(name)
        for name, function in area.environ_builtins().items():
            values[f"__dl_py_env_{name}"] = _wrap(function)
            setup.append(f"def {name}(*args, **kwargs):")
            setup.append(f"    return __dl_py_env_{name}(__DL_ENVIRON, *args, **kwargs)")
            located.add(name)
    for module, members in modules.items():
        values[f"__dl_py_module_{module}"] = _nest(module, members)
        setup.append(f"{module} = __dl_struct_copy(__dl_py_module_{module})")
    if "os" in modules:
        setup.append('os["environ"] = __DL_ENVIRON; os["getenv"] = __dl_getenv; '
                     'os["putenv"] = __dl_putenv; os["unsetenv"] = __dl_unsetenv')
    return values, setup, located


def _nest(module: str, members: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = {"__dl_type__": "module"}
    for dotted, value in members.items():
        node = root
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {"__dl_type__": "module"})
        node[parts[-1]] = value
    return root


def evaluate(path: str, *, args: tuple[str, ...] = (), subcommand: str = "up",
             extensions: ExtensionSettings | None = None,
             area_factory: Callable[[EvalContext], list[Area]] | None = None,
             max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
             on_output: Callable[[str], None] | None = None) -> Evaluation:
    """Evaluate the Tiltfile at `path` in this process. Raises TiltfileError with the
    file:line at fault. The daemon and the CLI go through `isolated.py` instead, which
    runs this in a child process with time and memory limits."""
    from devloop.tiltfile.areas import default_areas

    main = os.path.abspath(path)
    ctx = EvalContext(main_path=main, args=args, subcommand=subcommand,
                      max_read_bytes=max_read_bytes, on_output=on_output)
    extensions = extensions or ExtensionSettings.from_environ()
    areas = (area_factory or default_areas)(ctx)
    draft = PlanDraft(tiltfile=main)
    final_environ: dict[str, str] = {}

    def finish(environ: dict[str, str]) -> None:
        final_environ.update(environ)

    hooks: dict[str, Callable[..., Any]] = {
        "__dl_py_push_location": ctx.push_location,
        "__dl_py_pop_location": ctx.pop_location,
        "__dl_py_environ": lambda: dict(ctx.environ),
        "__dl_py_finish": finish,
        "__dl_py_workloads": lambda: [],
        "__dl_py_set_workload_names": lambda names: draft.workload_names.update(names),
    }
    for area in areas:
        hooks.update(getattr(area, "hooks", lambda: {})())
    values, setup, located = _globals(areas, ctx, hooks)
    files, targets = _rewrite_all(main, ctx, frozenset(located), extensions)
    values["__dl_py_enter_module"] = lambda key: ctx.enter_module(files[key].path)
    values["__dl_py_exit_module"] = ctx.exit_module
    program = Program(files, 0, targets, setup=setup)
    program.run(values, ctx.print)
    try:
        for area in areas:
            area.contribute(draft)
    except BuiltinError as exc:
        raise TiltfileError(str(exc), ctx.location()) from None
    return Evaluation(_plan(draft, ctx, final_environ), tuple(ctx.output))


def _plan(draft: PlanDraft, ctx: EvalContext, environ: dict[str, str]) -> p.Plan:
    settings = p.Settings(
        update=p.UpdateSettings(**draft.update_settings),
        ci=p.CISettings(**draft.ci_settings),
        watch=p.WatchSettings(tuple(draft.watch_ignore)),
        secrets=p.SecretSettings(**draft.secret_settings),
        **draft.settings,
    )
    changed_env = tuple(sorted((k, v) for k, v in environ.items() if ctx.environ.get(k) != v))
    return p.Plan(
        tiltfile=draft.tiltfile,
        resources=tuple(draft.resources),
        images=tuple(draft.images),
        settings=settings,
        enabled_resources=draft.enabled_resources,
        compose=draft.compose,
        extension_objects=tuple(draft.extension_objects),
        config_files=tuple(ctx.files_read),
        warnings=tuple(ctx.warnings),
        environ=changed_env,
        tiltfile_args=ctx.args,
    )
