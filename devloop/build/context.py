"""Build-context filtering: which files of a docker_build context reach the Docker engine.

The rules are Docker's and Tilt's:

- `.dockerignore` at the root of the context uses Docker's pattern language: `*` and `?`
  stay within one path segment, `**` spans any number of segments, `!pattern` re-includes
  what an earlier pattern excluded, the last matching pattern wins, and a pattern that
  matches a directory also matches everything under it.
- docker_build's `ignore=` adds more patterns of the same language after `.dockerignore`.
- docker_build's `only=` is an allowlist of paths (not globs) relative to the context: when
  given, nothing else is in the context.
- The Dockerfile and `.dockerignore` are always sent, whatever the patterns say (the docker
  CLI does the same). A Dockerfile from outside the context, or given as
  `dockerfile_contents`, is added under a generated name that `.dockerignore` hides from
  `COPY . .`, as the docker CLI does for a Dockerfile read from stdin.

The same `ContextFilter` answers the file watcher's question "does a change to this path
matter to this image?" through `is_ignored`.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from devloop.model import plan

DOCKERIGNORE = ".dockerignore"
# Name of a Dockerfile that does not live inside the context (dockerfile_contents, or a
# path outside it). The docker CLI uses a random ".dockerfile.<hex>" name; a fixed name
# keeps the context digest stable between two identical builds.
GENERATED_DOCKERFILE = ".dockerfile.devloop"

_REGEX_SPECIALS = set(".+()|{}$^")


class _Pattern:
    """One compiled .dockerignore pattern."""

    def __init__(self, text: str) -> None:
        self.exclusion = text.startswith("!")
        body = text[1:] if self.exclusion else text
        self.text = body
        self.regex = re.compile(_pattern_regex(body), re.DOTALL)

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def _pattern_regex(pattern: str) -> str:
    """Translate a Docker ignore pattern to an anchored regular expression."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                # "**/" behaves like "**": it may also match zero directories.
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch in "[]":
            out.append(ch)
        elif ch in _REGEX_SPECIALS:
            out.append("\\" + ch)
        else:
            out.append(re.escape(ch) if not ch.isalnum() and ch not in "/-_" else ch)
        i += 1
    out.append("$")
    return "".join(out)


def clean_pattern(line: str) -> str | None:
    """Normalise one .dockerignore line like Docker does; None for blanks and comments."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    invert = text.startswith("!")
    if invert:
        text = text[1:].strip()
    if text:
        text = posixpath.normpath(text.replace(os.sep, "/"))
        if text.startswith("//"):
            text = "/" + text.lstrip("/")
        if len(text) > 1 and text.startswith("/"):
            text = text[1:]
    return ("!" + text) if invert else text


class PatternMatcher:
    """Docker's ignore-pattern semantics over slash-separated paths relative to a root."""

    def __init__(self, patterns: Sequence[str]) -> None:
        cleaned = (clean_pattern(p) for p in patterns)
        self._patterns = [_Pattern(p) for p in cleaned if p and p != "!"]
        self.has_exceptions = any(p.exclusion for p in self._patterns)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def matches(self, relpath: str) -> bool:
        """True when the path is excluded; a match on any parent directory counts."""
        path = relpath.strip("/")
        parent = posixpath.dirname(path)
        parent_dirs = parent.split("/") if parent else []
        matched = False
        for pattern in self._patterns:
            # An exclusion can only flip a match, an inclusion only a non-match.
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit:
                for i in range(len(parent_dirs)):
                    if pattern.match("/".join(parent_dirs[: i + 1])):
                        hit = True
                        break
            if hit:
                matched = not pattern.exclusion
        return matched


def read_dockerignore(context_dir: str) -> list[str]:
    """The raw lines of the context's .dockerignore (empty when there is none)."""
    try:
        with open(os.path.join(context_dir, DOCKERIGNORE), encoding="utf-8-sig") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def _norm_rel(path: str) -> str:
    rel = posixpath.normpath(path.replace(os.sep, "/")).strip("/")
    return "" if rel == "." else rel


@dataclass(frozen=True)
class ContextFilter:
    """Which paths under a build context are part of the image's inputs."""

    context: str
    dockerfile: str
    patterns: tuple[str, ...]
    only: tuple[str, ...] = ()

    @classmethod
    def for_build(cls, target: plan.DockerBuild) -> ContextFilter:
        """Filter for a docker_build: its .dockerignore (read now), `ignore=` and `only=`."""
        context = os.path.abspath(target.context)
        patterns = tuple(read_dockerignore(context)) + tuple(target.ignore)
        only = tuple(r for r in (_norm_rel(o) for o in target.only))
        dockerfile = "" if target.dockerfile_contents is not None else target.dockerfile
        return cls(context=context, dockerfile=os.path.abspath(dockerfile) if dockerfile else "",
                   patterns=patterns, only=only)

    @property
    def matcher(self) -> PatternMatcher:
        return PatternMatcher(self.patterns)

    def relpath(self, path: str) -> str | None:
        """Path relative to the context, or None when it lies outside."""
        full = os.path.abspath(os.path.join(self.context, path))
        rel = os.path.relpath(full, self.context)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            return None
        return _norm_rel(rel)

    def is_ignored(self, path: str) -> bool:
        """True when a change to `path` (absolute, or relative to the context) cannot change
        the image: outside the context, excluded by the patterns, or not in `only`.
        The Dockerfile and .dockerignore always matter."""
        full = os.path.abspath(os.path.join(self.context, path))
        if self.dockerfile and full == self.dockerfile:
            return False
        rel = self.relpath(full)
        if rel is None:
            return True
        if rel in ("", DOCKERIGNORE):
            return False
        return self._excluded(rel, self.matcher)

    def _excluded(self, rel: str, matcher: PatternMatcher) -> bool:
        if self.only and not any(rel == o or rel.startswith(o + "/") or not o
                                 for o in self.only):
            return True
        return matcher.matches(rel)

    def _prune_dir(self, rel: str, matcher: PatternMatcher) -> bool:
        """True when nothing under directory `rel` can be in the context."""
        if self.only and not any(
            not o or rel == o or rel.startswith(o + "/") or o.startswith(rel + "/")
            for o in self.only
        ):
            return True
        # An exception pattern might re-include a file below an excluded directory.
        return matcher.matches(rel) and not matcher.has_exceptions

    def walk(self) -> Iterator[tuple[str, str]]:
        """(relative path, absolute path) of every file, symlink and directory in the
        filtered context, sorted so that the tar and the digest are deterministic."""
        matcher = self.matcher
        for root, dirs, files in os.walk(self.context):
            rel_root = _norm_rel(os.path.relpath(root, self.context))
            kept_dirs = []
            for name in sorted(dirs):
                rel = posixpath.join(rel_root, name) if rel_root else name
                full = os.path.join(root, name)
                if os.path.islink(full):
                    if not self._excluded(rel, matcher):
                        yield rel, full
                    continue
                if self._prune_dir(rel, matcher):
                    continue
                kept_dirs.append(name)
                if not self._excluded(rel, matcher):
                    yield rel, full
            dirs[:] = kept_dirs
            for name in sorted(files):
                rel = posixpath.join(rel_root, name) if rel_root else name
                if rel == DOCKERIGNORE or not self._excluded(rel, matcher):
                    yield rel, os.path.join(root, name)


@dataclass
class BuildContext:
    """A filtered build context ready to send: an uncompressed tar positioned at 0."""

    tar: IO[bytes]
    dockerfile: str  # path of the Dockerfile inside the tar
    digest: str  # "sha256:<hex>" over the entries (names, modes, contents), not mtimes
    files: int

    def close(self) -> None:
        self.tar.close()


def _dockerfile_source(target: plan.DockerBuild, context: str) -> tuple[str, bytes]:
    """(name inside the context, contents) of the Dockerfile to send."""
    if target.dockerfile_contents is not None:
        return GENERATED_DOCKERFILE, target.dockerfile_contents.encode()
    path = os.path.abspath(os.path.join(context, target.dockerfile))
    with open(path, "rb") as f:
        contents = f.read()
    rel = os.path.relpath(path, context)
    if rel.startswith(os.pardir):
        return GENERATED_DOCKERFILE, contents
    return _norm_rel(rel), contents


def make_build_context(target: plan.DockerBuild) -> BuildContext:
    """Write the filtered context of `target` as a tar into a temporary file (blocking:
    call it from a worker thread). Raises OSError when the context or Dockerfile is missing."""
    flt = ContextFilter.for_build(target)
    if not os.path.isdir(flt.context):
        raise FileNotFoundError(f"build context {flt.context} is not a directory")
    df_name, df_contents = _dockerfile_source(target, flt.context)
    dockerignore = "\n".join(read_dockerignore(flt.context))
    if df_name == GENERATED_DOCKERFILE:
        # Keep the generated file out of COPY: the daemon drops files its .dockerignore lists.
        dockerignore = f"{dockerignore}\n{GENERATED_DOCKERFILE}\n{DOCKERIGNORE}\n".lstrip("\n")
    digest = hashlib.sha256()
    out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, closed by it
    count = 0
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            # The Dockerfile (a short name, a whole-second mtime) goes first: buildx peeks at
            # the start of stdin to tell a tar from a Dockerfile, and a PAX header there
            # (a long or non-ASCII path) would make it fail with "ambiguous Dockerfile source".
            extra = [(df_name, df_contents)]
            if dockerignore:
                extra.append((DOCKERIGNORE, dockerignore.encode()))
            for name, data in extra:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                _own_by_root(info)
                digest.update(f"{name}\0{len(data)}\0".encode())
                digest.update(data)
                tar.addfile(info, io.BytesIO(data))
                count += 1
            for rel, full in flt.walk():
                if rel in (df_name, DOCKERIGNORE):
                    continue  # added above from what was read
                info = tar.gettarinfo(full, arcname=rel)
                _own_by_root(info)
                digest.update(f"{rel}\0{info.type!r}\0{info.mode:o}\0{info.linkname}\0".encode())
                if info.isreg():
                    with open(full, "rb") as f:
                        hashing = _HashingReader(f, digest)
                        tar.addfile(info, hashing)
                        if hashing.size != info.size:
                            raise OSError(f"{full} changed size while the context was being sent")
                else:
                    tar.addfile(info)
                count += 1
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return BuildContext(tar=out, dockerfile=df_name, digest="sha256:" + digest.hexdigest(),
                        files=count)


def buildkit_ignore_patterns(target: plan.DockerBuild) -> list[str]:
    """The filter as one ignore file, for BuildKit's `<Dockerfile>.dockerignore` (used when
    BuildKit reads the context directory itself instead of devloop's tar): `only=` first,
    as `*` plus an exception per path, then `.dockerignore` and `ignore=`. One difference
    from `make_build_context`: a `!` exception in `.dockerignore` can re-include a path
    outside `only=`."""
    flt = ContextFilter.for_build(target)
    lines: list[str] = []
    if flt.only and "" not in flt.only:
        lines += ["*", *(f"!{o}" for o in flt.only)]
    lines += [p for p in flt.patterns if clean_pattern(p) is not None]
    return lines


def dockerfile_source(target: plan.DockerBuild) -> bytes:
    """The Dockerfile's contents (blocking). Raises OSError when it cannot be read."""
    return _dockerfile_source(target, os.path.abspath(target.context))[1]


def context_digest(target: plan.DockerBuild) -> str:
    """The content digest of the filtered context (what `make_build_context` would send)."""
    ctx = make_build_context(target)
    ctx.close()
    return ctx.digest


def _own_by_root(info: tarfile.TarInfo) -> None:
    # The docker CLI sends every file as owned by 0:0, so ownership on this machine never
    # changes the image.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    # Whole seconds, as the docker CLI sends them: a fractional mtime makes a PAX header
    # before the first entry, and buildx then no longer recognises stdin as a tar (it
    # peeks 1024 bytes) and fails with "ambiguous Dockerfile source".
    info.mtime = int(info.mtime)
    if info.isdir() or info.isreg():
        info.mode = stat.S_IMODE(info.mode)


class _HashingReader(io.RawIOBase):
    """Feeds everything read through it into a hash, so the tar and digest take one pass."""

    def __init__(self, inner: IO[bytes], digest: hashlib._Hash) -> None:
        self._inner = inner
        self._digest = digest
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._digest.update(data)
        self.size += len(data)
        return data
