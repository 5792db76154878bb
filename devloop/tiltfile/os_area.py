"""The `os`, `os.path`, `sys` and `shlex` modules of the Tiltfile (os.environ/getenv/putenv/
unsetenv live in the evaluator's prelude, because they must be a mutable Starlark dict).

Path functions follow Tilt, which implements them with Go's `path/filepath`: results are
cleaned (`join("a/", "../b")` is "b"), `dirname("a")` is ".", and relative paths resolve
against the directory of the Tiltfile that makes the call.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping
from typing import Any

from devloop.tiltfile.context import EvalContext, PlanDraft, type_name, want_str
from devloop.tiltfile.errors import BuiltinError
from devloop.tiltfile.files_area import builtin_name


def go_clean(path: str) -> str:
    """Go's filepath.Clean: the shortest equivalent path ("" becomes ".")."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    # POSIX keeps a leading "//"; Go collapses it.
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def go_base(path: str) -> str:
    """Go's filepath.Base: the last element, ignoring trailing slashes."""
    if not path:
        return "."
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


def go_dir(path: str) -> str:
    """Go's filepath.Dir: everything but the last element, cleaned."""
    head = path[:path.rfind("/") + 1] if "/" in path else ""
    return go_clean(head)


def go_rel(base: str, target: str) -> str:
    """Go's filepath.Rel: fails when one path is absolute and the other is not."""
    base_clean, target_clean = go_clean(base), go_clean(target)
    if posixpath.isabs(base_clean) != posixpath.isabs(target_clean):
        raise BuiltinError(f"Rel: can't make {target} relative to {base}")
    base_parts = [] if base_clean in (".", "/") else base_clean.strip("/").split("/")
    target_parts = [] if target_clean in (".", "/") else target_clean.strip("/").split("/")
    common = 0
    while (common < len(base_parts) and common < len(target_parts)
           and base_parts[common] == target_parts[common]):
        common += 1
    if ".." in base_parts[common:]:
        raise BuiltinError(f"Rel: can't make {target} relative to {base}")
    parts = [".."] * (len(base_parts) - common) + target_parts[common:]
    return "/".join(parts) or "."


def _devloop_executable() -> str:
    """What Tiltfiles get as sys.executable: Tilt gives its own binary, which extensions run
    as `<executable> apply -f -` and the like."""
    found = shutil.which("devloop")
    if found:
        return found
    return f"{sys.executable} -m devloop"


class OsArea:
    """os.getcwd, os.name, os.path.*, sys.argv, sys.executable, shlex.quote."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx

    def builtins(self) -> Mapping[str, Any]:
        return {
            "os.name": "nt" if os.name == "nt" else "posix",
            "os.getcwd": self.getcwd,
            "os.path.abspath": self.abspath,
            "os.path.relpath": self.relpath,
            "os.path.basename": self.basename,
            "os.path.dirname": self.dirname,
            "os.path.exists": self.exists,
            "os.path.isdir": self.isdir,
            "os.path.isfile": self.isfile,
            "os.path.join": self.join,
            "os.path.realpath": self.realpath,
            "os.path.splitext": self.splitext,
            "os.path.sep": "/",
            "sys.argv": list(sys.argv),
            "sys.executable": _devloop_executable(),
            "shlex.quote": self.quote,
            "local_git_repo": self.local_git_repo,
        }

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def contribute(self, draft: PlanDraft) -> None:
        """Nothing here changes the Plan."""

    @builtin_name("os.getcwd")
    def getcwd(self) -> str:
        """os.getcwd() -> the directory of the Tiltfile being executed; relative paths in
        builtins resolve against it."""
        return self.ctx.current_dir()

    @builtin_name("local_git_repo")
    def local_git_repo(self, paths: Any) -> None:
        """local_git_repo(paths): refused with a message. Tilt's value carries a `.paths()`
        method, which the Starlark binding cannot hand back from Python; what it computes
        is `os.path.join(repo_dir, path)`."""
        want_str("local_git_repo", "paths", paths, allow_blob=False)
        raise BuiltinError("local_git_repo is not supported by devloop; for "
                           "repo.paths(p) write os.path.join(<repo dir>, p)")

    @builtin_name("os.path.abspath")
    def abspath(self, path: Any) -> str:
        """os.path.abspath(path): absolute and cleaned, relative to the calling Tiltfile."""
        return self.ctx.abspath(want_str("os.path.abspath", "path", path))

    @builtin_name("os.path.relpath")
    def relpath(self, targpath: Any, basepath: Any = None) -> str:
        """os.path.relpath(targpath, basepath=<cwd>): `targpath` relative to `basepath`. As in
        Tilt (Go's filepath.Rel), both must be absolute or both relative."""
        target = want_str("os.path.relpath", "targpath", targpath)
        base = self.ctx.current_dir() if basepath is None \
            else want_str("os.path.relpath", "basepath", basepath)
        try:
            return go_rel(base, target)
        except BuiltinError as exc:
            raise BuiltinError(f"os.path.relpath: {exc}") from None

    @builtin_name("os.path.basename")
    def basename(self, path: Any) -> str:
        """os.path.basename(path): the last path element ("a/b/" gives "b")."""
        return go_base(want_str("os.path.basename", "path", path))

    @builtin_name("os.path.dirname")
    def dirname(self, path: Any) -> str:
        """os.path.dirname(path): all but the last element ("a" gives ".")."""
        return go_dir(want_str("os.path.dirname", "path", path))

    @builtin_name("os.path.exists")
    def exists(self, path: Any) -> bool:
        """os.path.exists(path): whether a file or directory is there (False for a broken
        symlink or a permission error). Does not watch the path (Tilt >= 0.18.4)."""
        return os.path.exists(self.ctx.abspath(want_str("os.path.exists", "path", path)))

    @builtin_name("os.path.isdir")
    def isdir(self, path: Any) -> bool:
        """os.path.isdir(path): whether `path` is a directory."""
        return os.path.isdir(self.ctx.abspath(want_str("os.path.isdir", "path", path)))

    @builtin_name("os.path.isfile")
    def isfile(self, path: Any) -> bool:
        """os.path.isfile(path): whether `path` is a regular file."""
        return os.path.isfile(self.ctx.abspath(want_str("os.path.isfile", "path", path)))

    @builtin_name("os.path.join")
    def join(self, *paths: Any) -> str:
        """os.path.join(path, *paths): the non-empty parts joined with "/" and cleaned."""
        parts: list[str] = []
        for index, part in enumerate(paths):
            if not isinstance(part, str):
                raise BuiltinError(f"os.path.join: only accepts strings. Argument #{index}: "
                                   f"got {type_name(part)}")
            parts.append(part)
        joined = "/".join(p for p in parts if p)
        return go_clean(joined) if joined else ""

    @builtin_name("os.path.realpath")
    def realpath(self, path: Any) -> str:
        """os.path.realpath(path): the absolute path with symlinks resolved; an error if the
        path does not exist (Go's EvalSymlinks)."""
        absolute = self.ctx.abspath(want_str("os.path.realpath", "path", path))
        if not os.path.lexists(absolute):
            raise BuiltinError(f"os.path.realpath: lstat {absolute}: no such file or directory")
        return os.path.realpath(absolute)

    @builtin_name("os.path.splitext")
    def splitext(self, path: Any) -> tuple[str, str]:
        """os.path.splitext(path) -> (root, ext), as in Python."""
        return posixpath.splitext(want_str("os.path.splitext", "path", path))

    @builtin_name("shlex.quote")
    def quote(self, s: Any) -> str:
        """shlex.quote(s): `s` quoted for a POSIX shell."""
        return shlex.quote(want_str("shlex.quote", "s", s))
