"""Evaluate a Tiltfile into a Plan: prepare its files, run them as one program, assemble.

How a run works (the starlark-go binding forces the shape; see its note in program.py):
every file becomes a function of one Starlark program, and `load`, `include` and
`load_dynamic` call back into Python when they execute to resolve their path against the
running file (or an `ext://` extension, after any `v1alpha1.extension_repo()` /
`extension()` declared so far). Each file runs once per evaluation; a load cycle is an
error naming the files. Files named by literal paths are prepared before the first run.
A file reached only at run time (a computed path, `include(f) for f in listdir(...)`, or
an extension redirected at run time) ends the run; it is prepared (with the other files
of its directory, since a loop usually includes them all) and the program runs again from
the start. A rerun is invisible: builtins only record into fresh areas, `local()` calls
are answered from the first run's record so that no command runs twice, and printed lines
already streamed are not streamed again.

What is still rewritten, and why (source.py): `load()` statements (the binding has no
loader hook), attribute access and assignment (structs and modules are dicts with a
type marker, since Python objects with attributes cannot cross into Starlark; the marker's
key has a random name per process, so no user dict is taken for a struct), `-` (the
bundled starlark-go lacks set difference) and calls of builtins (to give them their call
site). A loaded file's values are frozen as in Tilt when the file can run before the main
one, in a program of its own (the binding freezes only at the end of an `exec`): see
`_hoist_order` and program.py. Other files' values stay mutable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import starlark_go

from devloop.model import plan as p
from devloop.tiltfile.context import (
    DEFAULT_MAX_READ_BYTES,
    STRUCT_TYPE_KEY,
    Area,
    EvalContext,
    PlanDraft,
    open_regular,
)
from devloop.tiltfile.errors import BuiltinError, Location, ResolutionError, TiltfileError
from devloop.tiltfile.evaluation import Evaluation
from devloop.tiltfile.loader import ExtensionSettings, resolve
from devloop.tiltfile.messages_area import stopped_by_exit
from devloop.tiltfile.program import Program, prelude
from devloop.tiltfile.source import RewrittenFile, rewrite

# A run that keeps finding new files ends here (each rerun adds at least one file).
MAX_RUNS = 50
# Sibling files prepared with a file include()d at run time: small files named like
# Starlark. (Any file that parses would do, but one that does not resolve, such as a
# .gitignore line read as a name, would fail the whole program.)
_SIBLING_LIMIT = 200
_SIBLING_MAX_BYTES = 1024 * 1024
_STARLARK_NAMES = re.compile(r"(Tiltfile.*|.*\.(tiltfile|Tiltfile|star|starlark|bzl|sky))")


def _syntax_check(path: str, text: str) -> None:
    """starlark-go's own parser decides what is valid Starlark. Nothing runs: the appended
    reference to an undefined name fails resolution, which happens before execution."""
    lines = text.count("\n") + 1
    try:
        starlark_go.Starlark().exec(text + "\n__dl_never_defined__\n", filename=path)
    except starlark_go.SyntaxError as exc:
        if exc.line > lines:
            # The file ends inside a statement, so it cannot parse without the marker
            # either: parse it alone for the error as the user sees it.
            _syntax_check_alone(path, text)
        raise TiltfileError(f"syntax error: {exc.msg}",
                            Location(path, exc.line, exc.column)) from None
    except starlark_go.StarlarkError:
        pass


def _syntax_check_alone(path: str, text: str) -> None:
    try:
        starlark_go.Starlark().exec(text, filename=path)
    except starlark_go.SyntaxError as exc:
        raise TiltfileError(f"syntax error: {exc.msg}",
                            Location(path, exc.line, exc.column)) from None
    except starlark_go.StarlarkError:
        pass


def _read_source(path: str, location: Location | None, max_bytes: int) -> str:
    try:
        with open_regular(path) as handle:
            data = handle.read(max_bytes + 1)
    except BuiltinError as exc:
        raise TiltfileError(str(exc), location) from None
    except FileNotFoundError:
        raise TiltfileError(f"file not found: {path}", location) from None
    except IsADirectoryError:
        raise TiltfileError(f"{path} is a directory, want a Starlark file", location) from None
    except OSError as exc:
        raise TiltfileError(f"cannot read {path}: {exc.strerror}", location) from None
    if len(data) > max_bytes:
        raise TiltfileError(f"{path} is larger than {max_bytes // 2**20} MB "
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


@dataclass
class _Sources:
    """The files of the program, each read and rewritten once per evaluation. A file named
    by a literal path that cannot be prepared keeps its error for when it runs."""

    located: frozenset[str]
    extensions: ExtensionSettings
    max_bytes: int
    files: list[RewrittenFile] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    broken: dict[str, TiltfileError] = field(default_factory=dict)

    def add(self, path: str, location: Location | None = None) -> None:
        """Prepare `path` (raises TiltfileError) and, quietly, the files it names."""
        if path in self.index:
            return
        text = _read_source(path, location, self.max_bytes)
        rewritten = rewrite(path, text, self.located, _syntax_check)
        self.index[path] = len(self.files)
        self.files.append(rewritten)
        for spec in self.files[-1].loads:
            if spec.path.startswith("ext://"):
                continue  # resolved when it runs, after any extension_repo() declaration
            try:
                target = resolve(spec.path, path, self.extensions, spec.kind)
            except BuiltinError:
                continue
            if target not in self.index and target not in self.broken \
                    and os.path.isfile(target):
                try:
                    self.add(target, spec.location)
                except TiltfileError as exc:
                    self.broken[target] = exc

    def add_siblings(self, path: str) -> None:
        """Prepare the small files next to `path` that are valid Starlark and are named
        like Starlark or like `path` (same extension, or none)."""
        directory = os.path.dirname(path)
        suffix = os.path.splitext(path)[1]
        try:
            names = sorted(os.listdir(directory))[:_SIBLING_LIMIT]
        except OSError:
            return
        for name in names:
            if not _STARLARK_NAMES.fullmatch(name) and (
                    name.startswith(".") or os.path.splitext(name)[1] != suffix):
                continue
            candidate = os.path.join(directory, name)
            try:
                if os.path.getsize(candidate) > _SIBLING_MAX_BYTES \
                        or not os.path.isfile(candidate):
                    continue
                self.add(candidate)
            except (OSError, TiltfileError):
                continue  # not Starlark: if it is included anyway, that reports why


@dataclass
class _Replay:
    """`local()` results of earlier runs of this evaluation, in call order, so that a rerun
    answers them without running any command again."""

    calls: list[tuple[str, Any, list[str], str | None]] = field(default_factory=list)
    position: int = 0

    def wrap(self, function: Callable[..., Any], ctx: EvalContext) -> Callable[..., Any]:
        def replayed(*args: Any, **kwargs: Any) -> Any:
            key = repr((args, sorted(kwargs.items())))
            position, self.position = self.position, self.position + 1
            if position < len(self.calls) and self.calls[position][0] == key:
                _, result, lines, error = self.calls[position]
                for line in lines:
                    ctx.print(line)
                if error is not None:
                    raise BuiltinError(error)
                return result
            del self.calls[position:]
            start = len(ctx.output)
            try:
                result = function(*args, **kwargs)
            except BuiltinError as exc:
                self.calls.append((key, None, ctx.output[start:], str(exc)))
                raise
            self.calls.append((key, result, ctx.output[start:], None))
            return result

        replayed.__name__ = getattr(function, "__name__", "local")
        return replayed


@dataclass
class _Stream:
    """Passes printed lines on once: a rerun prints the first run's lines again."""

    on_output: Callable[[str], None] | None
    streamed: int = 0
    seen: int = 0

    def line(self, text: str) -> None:
        self.seen += 1
        if self.seen > self.streamed:
            self.streamed = self.seen
            if self.on_output is not None:
                self.on_output(text)


class _NeedsFile(Exception):
    """A run reached a file the program lacks (or one that could not be prepared)."""


def _wrap(function: Callable[..., Any], name: str = "") -> Callable[..., Any]:
    """Turn BuiltinErrors into plain messages starlark-go reports with the call stack."""

    def builtin(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except BuiltinError as exc:
            raise RuntimeError(str(exc)) from None
        except MemoryError:
            raise RuntimeError("out of memory (DEVLOOP_TILTFILE_MEMORY_MB)") from None
        except KeyboardInterrupt:
            # starlark-go turns any exception of a builtin into an error of the program.
            raise RuntimeError("interrupted") from None

    # starlark-go prefixes errors with the function's name; the prefix of a __dl_ name
    # is dropped when the error is reported (program.py).
    builtin.__name__ = name or getattr(function, "__name__", "builtin").lstrip("_") or "builtin"
    return builtin


def _globals(areas: list[Area], ctx: EvalContext, hooks: Mapping[str, Any],
             replay: _Replay) -> tuple[dict[str, Any], list[str], set[str]]:
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
            if name == "local":
                function = replay.wrap(function, ctx)
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
    root: dict[str, Any] = {STRUCT_TYPE_KEY: "module"}
    for dotted, value in members.items():
        node = root
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {STRUCT_TYPE_KEY: "module"})
        node[parts[-1]] = value
    return root


def _located_names(areas: list[Area]) -> frozenset[str]:
    """Names of builtins whose calls the rewriter locates."""
    names: set[str] = set()
    for area in areas:
        names.update(name for name, value in area.builtins().items()
                     if callable(value) and "." not in name)
        names.update(area.environ_builtins())
    return frozenset(names)


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
    extensions = extensions or ExtensionSettings.from_environ()
    factory = area_factory or default_areas
    probe = EvalContext(main_path=main, args=args, subcommand=subcommand)
    sources = _Sources(_located_names(factory(probe)), extensions, max_read_bytes)
    probe.record_read(main)
    sources.add(main)
    replay, stream = _Replay(), _Stream(on_output)
    for _ in range(MAX_RUNS):
        ctx = EvalContext(main_path=main, args=args, subcommand=subcommand,
                          max_read_bytes=max_read_bytes, on_output=stream.line)
        needed: list[tuple[str, str]] = []
        try:
            return _run(ctx, factory(ctx), sources, replay, needed)
        except _NeedsFile:
            pass
        finally:
            replay.position, stream.seen = 0, 0
        for kind, target in needed:
            if target in sources.broken:
                raise sources.broken[target]
            sources.add(target)
            if kind != "load":  # a loop over a directory's files usually includes them all
                sources.add_siblings(target)
    raise TiltfileError(f"{main}: evaluation reached new files more than {MAX_RUNS} times")


def _run(ctx: EvalContext, areas: list[Area], sources: _Sources, replay: _Replay,
         needed: list[tuple[str, str]]) -> Evaluation:
    """One run of the program. Raises _NeedsFile after adding to `needed` the file a
    load/include reached that the program lacks."""
    draft = PlanDraft(tiltfile=ctx.main_path)
    final_environ: dict[str, str] = {}
    # os.environ as a file that ran in a program of its own left it, for the next one.
    carried_environ: dict[str, str] = {}
    ctx.record_read(ctx.main_path)

    def module_key(path: Any, kind: str) -> int:
        if not isinstance(path, str):
            raise BuiltinError(f"{kind}: for parameter 'path': got {type(path).__name__}, "
                               "want string")
        running = ctx.current_file()
        target = resolve(path, running, sources.extensions, kind, ctx.declared_objects)
        ctx.record_read(target)
        if target in sources.index and target not in sources.broken:
            return sources.index[target]
        if target in sources.broken:
            needed.append((kind, target))  # the evaluation raises its error
            raise BuiltinError(f"{kind}: {target} cannot run")
        if not os.path.exists(target):
            raise BuiltinError(f"{kind}: file not found: {target}")
        if os.path.isdir(target):
            raise BuiltinError(f"{kind}: {target} is a directory, want a Starlark file")
        if not os.path.isfile(target):
            raise BuiltinError(f"{kind}: {target} is not a regular file (a device, pipe or "
                               "socket cannot be read)")
        needed.append((kind, target))
        raise BuiltinError(f"{kind}: {target} is not prepared yet")

    def cycle(keys: list[int]) -> str:
        return " -> ".join(sources.files[key].path for key in keys)

    hooks: dict[str, Any] = {
        "__DL_TYPE": STRUCT_TYPE_KEY,
        "__dl_py_push_location": ctx.push_location,
        "__dl_py_pop_location": ctx.pop_location,
        "__dl_py_environ": lambda: dict(carried_environ or ctx.environ),
        "__dl_py_carry_environ": lambda environ: carried_environ.update(environ),
        "__dl_py_finish": lambda environ: final_environ.update(environ),
        "__dl_py_workloads": lambda: [],
        "__dl_py_set_workload_names": lambda names: draft.workload_names.update(names),
        "__dl_py_module_key": _wrap(module_key, "__dl_py_module_key"),
        "__dl_py_cycle": cycle,
        "__dl_py_enter_module": lambda key: ctx.enter_module(sources.files[key].path),
        "__dl_py_exit_module": ctx.exit_module,
    }
    for area in areas:
        hooks.update(getattr(area, "hooks", lambda: {})())
    values, setup, _ = _globals(areas, ctx, hooks, replay)
    left_out = frozenset(sources.index[path] for path in sources.broken if path in sources.index)
    main_index = sources.index[ctx.main_path]
    program = Program(sources.files, main_index, setup=setup, leave_out=left_out,
                      hoisted=_hoist_order(sources, main_index, _program_names(setup),
                                           _environ_users(areas)))
    try:
        program.run(values, ctx.print)
    except ResolutionError as exc:
        # Before anything ran. In Tilt a file's undefined name fails only when the file is
        # loaded: leave that file out of the program until a run reaches it.
        path = exc.location.path if exc.location else ""
        if path == ctx.main_path or path not in sources.index or path in sources.broken:
            raise
        sources.broken[path] = exc
        raise _NeedsFile() from None
    except TiltfileError:
        if needed:
            raise _NeedsFile() from None
        environ_at_exit = stopped_by_exit(areas)
        if environ_at_exit is None:
            raise
        final_environ.update(environ_at_exit)  # exit(): what ran so far is the result
    try:
        for area in areas:
            area.contribute(draft)
    except BuiltinError as exc:
        raise TiltfileError(str(exc), ctx.location()) from None
    return Evaluation(_plan(draft, ctx, final_environ), tuple(ctx.output))


def _environ_users(areas: list[Area]) -> frozenset[str]:
    return frozenset(name for area in areas for name in area.environ_builtins())


def _program_names(setup: list[str]) -> frozenset[str]:
    """Top-level names of the prelude and the setup lines, which a file running at top
    level must not rebind."""
    text = "\n".join([prelude(), *setup])
    return frozenset(re.findall(r"^(?:def\s+)?([A-Za-z_]\w*)\s*[(=]", text, re.MULTILINE))


# What a function of a file that ran first must not use when it is called later: the
# program state those names reach (os.environ, callbacks) is that file's own frozen copy.
_STATE_NAMES = frozenset({"environ", "getenv", "putenv", "unsetenv",
                          "workload_to_resource_function"})


def _hoist_order(sources: _Sources, main_index: int, reserved: frozenset[str],
                 environ_users: frozenset[str]) -> tuple[int, ...]:
    """The files that run before the main one, each in a program of its own so that its
    values are frozen once loaded (program.py), in the order Tilt runs them.

    Tilt runs a file's `load`s where they stand. Those that lead the main file run before
    anything else of it, and so do theirs: running them first changes nothing, as long as
    each file's own loads lead too, name files known now (a literal path, or an ext://
    load before any extension repository was declared), and the file reaches no file at
    run time (include, load_dynamic), rebinds no name of the program's own, has no
    closure that may hold itself (starlark-go's freeze would never end), and has no
    function that reads or changes os.environ or runs a command (`environ_users`), which
    would see the file's frozen copy of os.environ instead of the current one. The order
    stops at the first file that does not qualify: what follows runs as before."""
    order: list[int] = []
    visiting: set[int] = set()
    stopped = False
    declared = False  # whether a file that ran first may have declared extension repos

    def target(spec: Any, running: str) -> int | None:
        if spec.kind != "load" or (declared and spec.path.startswith("ext://")):
            return None
        try:
            path = resolve(spec.path, running, sources.extensions, "load")
        except BuiltinError:
            return None
        if path in sources.broken or path not in sources.index:
            return None
        return sources.index[path]

    def visit(index: int) -> None:
        nonlocal stopped, declared
        if stopped or index in order:
            return
        file = sources.files[index]
        if index in visiting or index == main_index or not file.loads_lead \
                or file.dynamic_loads or file.closure_cycles \
                or file.top_level_names & reserved \
                or file.names_in_functions & (_STATE_NAMES | environ_users):
            stopped = True
            return
        visiting.add(index)
        for spec in file.loads:
            found = target(spec, file.path)
            if found is None:
                stopped = True
            else:
                visit(found)
            if stopped:
                return
        visiting.discard(index)
        order.append(index)
        declared = declared or file.declares_extensions

    main = sources.files[main_index]
    for spec in main.loads[:main.leading_loads]:
        found = target(spec, main.path)
        if found is None:
            break
        visit(found)
        if stopped:
            break
    return tuple(order)


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
