"""Dockerfile syntax: instructions with their lines, ARG substitution, and the images used.

One parser for the whole project: the Tiltfile finds a docker_build's image dependencies
with it, the build layer rewrites FROM lines and explains build errors with it. It follows
the grammar where it matters to them: parser directives (`# syntax=`, `# escape=`), comments
and blank lines (also inside a continued instruction), line continuations, heredocs (their
bodies are skipped), leading `--flag=value` options, ARGs declared before the first FROM
(with `--build-arg` overrides) and `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`, and
stage names (a FROM, COPY --from or RUN --mount from= naming an earlier stage is not an
image). It never raises: text it does not understand is kept as written.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_FLAG = re.compile(r"^--([a-z][a-z-]*)(?:=(\S*))?$")
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-+])"
                       r"(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")

# Flags the legacy builder refuses ("the --mount option requires BuildKit"), by instruction.
_BUILDKIT_FLAGS = {
    "RUN": {"mount", "network", "security", "device"},
    "COPY": {"chmod", "link", "parents", "exclude"},
    "ADD": {"chmod", "link", "parents", "exclude", "checksum", "keep-git-dir", "unpack"},
}


@dataclass(frozen=True)
class Instruction:
    """One instruction. `line`..`end` are its physical lines (1-based, heredoc bodies not
    included), `text` its first line as written, `rest` everything after the keyword with
    continuations joined, split into leading `flags` and the remaining `args`."""

    line: int
    keyword: str
    flags: tuple[tuple[str, str], ...]
    args: str
    text: str
    rest: str = ""
    end: int = 0
    heredoc: bool = False

    def flag(self, name: str) -> str | None:
        """The value of the first `--name` flag ("" when it has none), None when absent."""
        return next((value for flag, value in self.flags if flag == name), None)


@dataclass(frozen=True)
class Dockerfile:
    """Parser directives (name -> (line, value)) and the instructions, in file order."""

    directives: dict[str, tuple[int, str]] = field(default_factory=dict)
    instructions: tuple[Instruction, ...] = ()


def parse(text: str) -> Dockerfile:
    """Split a Dockerfile into instructions."""
    lines = text.splitlines()
    directives: dict[str, tuple[int, str]] = {}
    i = 0
    # Parser directives only count before the first comment, blank line or instruction.
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i].strip())
        if not match or match.group(1).lower() in directives:
            break
        directives[match.group(1).lower()] = (i + 1, match.group(2))
        i += 1
    escape = directives.get("escape", (0, "\\"))[1]
    if escape not in ("\\", "`"):
        escape = "\\"  # the builder refuses any other; keep reading with the default
    instructions: list[Instruction] = []
    while i < len(lines):
        start = i
        stripped = lines[i].strip()
        i += 1
        if not stripped or stripped.startswith("#"):
            continue
        logical = stripped
        end = i
        while logical.endswith(escape):
            logical = logical[:-1]
            # Comments and blank lines inside a continued instruction are dropped, as
            # Docker does; the instruction goes on with the next line that has text.
            while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                i += 1
            if i >= len(lines):
                break
            logical += " " + lines[i].strip()
            i += 1
            end = i
        parts = logical.split(None, 1)
        keyword = parts[0].upper()
        rest = parts[1].strip() if len(parts) > 1 else ""
        heredocs = [m.group(2) for m in _HEREDOC.finditer(rest)] if keyword in (
            "RUN", "COPY", "ADD") else []
        for terminator in heredocs:  # skip each heredoc's body up to its terminator line
            while i < len(lines) and lines[i].strip() != terminator:
                i += 1
            i += 1
        flags, args = _split_flags(rest)
        instructions.append(Instruction(line=start + 1, keyword=keyword, flags=flags, args=args,
                                        text=stripped, rest=rest, end=end,
                                        heredoc=bool(heredocs)))
    return Dockerfile(directives=directives, instructions=tuple(instructions))


def _split_flags(rest: str) -> tuple[tuple[tuple[str, str], ...], str]:
    flags: list[tuple[str, str]] = []
    words = rest.split()
    while words and (match := _FLAG.match(words[0])):
        flags.append((match.group(1), match.group(2) or ""))
        words.pop(0)
    return tuple(flags), " ".join(words)


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Expand $VAR, ${VAR}, ${VAR:-default} and ${VAR:+alternative} like the builder does;
    an unknown variable is empty."""

    def one(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        value = values.get(name, "")
        op = match.group("op")
        if op == ":-":
            return value or match.group("word")
        if op == ":+":
            return match.group("word") if value else ""
        return value

    return _VARIABLE.sub(one, text)


def arg_declarations(args: str) -> list[tuple[str, str | None]]:
    """`ARG a=1 "b=x y" c` -> [("a", "1"), ("b", "x y"), ("c", None)]."""
    try:
        words = shlex.split(args, posix=True)
    except ValueError:  # an unbalanced quote: the words as written
        words = args.split()
    out: list[tuple[str, str | None]] = []
    for word in words:
        name, eq, default = word.partition("=")
        out.append((name, default if eq else None))
    return out

# The uses that make one image of a Tiltfile depend on another: Tilt follows FROM and
# COPY --from, not RUN --mount from=.
DEPENDENCY_KEYWORDS = ("FROM", "COPY")


@dataclass(frozen=True)
class ImageUse:
    """An image the Dockerfile uses: the reference after ARG substitution, the instruction
    that names it (FROM, COPY for --from, RUN for --mount from=) and where it is."""

    ref: str
    line: int
    keyword: str
    text: str = ""


def image_uses(text: str, build_args: Mapping[str, str] | None = None) -> list[ImageUse]:
    """Every image the Dockerfile builds from, copies from or mounts, in file order, with the
    ARGs declared before the first FROM substituted (`build_args` winning over defaults);
    `scratch`, stage names and stage numbers are left out."""
    overrides = build_args or {}
    values: dict[str, str] = {}
    stages: set[str] = set()
    uses: list[ImageUse] = []
    seen_from = False

    def use(word: str, ins: Instruction) -> None:
        ref = substitute(word, values)
        if ref.lower() not in stages and not ref.isdigit() and ref.lower() != "scratch":
            uses.append(ImageUse(ref, ins.line, ins.keyword, ins.text))

    for ins in parse(text).instructions:
        if ins.keyword == "ARG" and not seen_from:
            # Only ARGs before the first FROM can be used in FROM lines.
            for name, default in arg_declarations(ins.args):
                value = overrides.get(name, default if default is not None else "")
                values[name] = substitute(value, values)
        elif ins.keyword == "FROM":
            seen_from = True
            words = ins.args.split()
            if not words:
                continue
            use(words[0], ins)
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
        elif ins.keyword == "COPY" and (source := ins.flag("from")):
            use(source, ins)
        elif ins.keyword == "RUN":
            for name, value in ins.flags:
                source = _mount_from(value) if name == "mount" else None
                if source:
                    use(source, ins)
    return uses


def _mount_from(spec: str) -> str | None:
    """The `from=` of a `--mount=type=...,from=...` value."""
    for option in spec.split(","):
        key, eq, value = option.partition("=")
        if eq and key.strip() == "from":
            return value.strip()
    return None


@dataclass(frozen=True)
class BuildKitFeature:
    """A Dockerfile line the legacy builder cannot build, and why."""

    line: int
    text: str
    what: str


def buildkit_features(text: str) -> list[BuildKitFeature]:
    """Every line that needs BuildKit, in file order."""
    df = parse(text)
    found: list[BuildKitFeature] = []
    if "syntax" in df.directives:
        line, value = df.directives["syntax"]
        found.append(BuildKitFeature(line, f"# syntax={value}", "a `# syntax=` frontend line"))
    for ins in df.instructions:
        for name, value in ins.flags:
            if name in _BUILDKIT_FLAGS.get(ins.keyword, ()):
                shown = f"--{name}={value}" if value else f"--{name}"
                found.append(BuildKitFeature(ins.line, ins.text, f"{ins.keyword} {shown}"))
                break
        else:
            if ins.heredoc:
                found.append(BuildKitFeature(ins.line, ins.text, f"a heredoc in {ins.keyword}"))
    return found
