"""Read a Dockerfile's instructions with their line numbers, for error messages.

Only as much of the Dockerfile grammar as the builder's errors need: parser directives
(`# syntax=`, `# escape=`), comments, line continuations, heredocs, and each instruction's
flags. It answers two questions: which lines need BuildKit (for the error the legacy
builder path gives), and which `FROM` line names a given base image (for the error when a
base image can be neither found locally nor pulled).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_FLAG = re.compile(r"^--([a-z][a-z-]*)(?:=(\S*))?$")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")

# Flags the legacy builder refuses ("the --mount option requires BuildKit"), by instruction.
_BUILDKIT_FLAGS = {
    "RUN": {"mount", "network", "security", "device"},
    "COPY": {"chmod", "link", "parents", "exclude"},
    "ADD": {"chmod", "link", "parents", "exclude", "checksum", "keep-git-dir", "unpack"},
}


@dataclass(frozen=True)
class Instruction:
    """One instruction: `line` is 1-based, `text` its first physical line as written."""

    line: int
    keyword: str
    flags: tuple[tuple[str, str], ...]
    args: str
    text: str
    heredoc: bool = False


@dataclass(frozen=True)
class Dockerfile:
    directives: dict[str, tuple[int, str]] = field(default_factory=dict)
    instructions: tuple[Instruction, ...] = ()


def parse(text: str) -> Dockerfile:
    """Split a Dockerfile into instructions (never raises: unknown input is kept as is)."""
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
    escape = directives.get("escape", (0, "\\"))[1][:1] or "\\"
    instructions: list[Instruction] = []
    while i < len(lines):
        start = i
        first = lines[i]
        stripped = first.strip()
        i += 1
        if not stripped or stripped.startswith("#"):
            continue
        logical = stripped
        while logical.endswith(escape) and i < len(lines):
            nxt = lines[i].strip()
            i += 1
            if nxt.startswith("#"):
                continue  # comments inside a continuation are dropped, as Docker does
            logical = logical[:-1] + " " + nxt
        keyword, _, rest = logical.partition(" ")
        heredocs = [m.group(2) for m in _HEREDOC.finditer(rest)] if keyword.upper() in (
            "RUN", "COPY", "ADD") else []
        for end in heredocs:  # skip each heredoc's body up to its terminator line
            while i < len(lines) and lines[i].strip() != end:
                i += 1
            i += 1
        flags, args = _split_flags(rest.strip())
        instructions.append(Instruction(line=start + 1, keyword=keyword.upper(), flags=flags,
                                        args=args, text=stripped, heredoc=bool(heredocs)))
    return Dockerfile(directives=directives, instructions=tuple(instructions))


def _split_flags(rest: str) -> tuple[tuple[tuple[str, str], ...], str]:
    flags: list[tuple[str, str]] = []
    words = rest.split(" ")
    while words and (match := _FLAG.match(words[0])):
        flags.append((match.group(1), match.group(2) or ""))
        words.pop(0)
    return tuple(flags), " ".join(w for w in words if w)


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


def _substitute(value: str, args: dict[str, str]) -> str:
    def repl(match: re.Match[str]) -> str:
        return args.get(match.group(1) or match.group(2), "")

    return _VAR.sub(repl, value)


@dataclass(frozen=True)
class BaseImage:
    line: int
    text: str
    image: str  # after ARG substitution


def base_images(text: str, build_args: dict[str, str] | None = None) -> list[BaseImage]:
    """The image each FROM line names (ARGs before the first FROM substituted, with
    `--build-arg` values winning over defaults); FROM of an earlier stage is left out."""
    args: dict[str, str] = {}
    overrides = build_args or {}
    stages: set[str] = set()
    found: list[BaseImage] = []
    seen_from = False
    for ins in parse(text).instructions:
        if ins.keyword == "ARG" and not seen_from:
            for decl in ins.args.split():
                name, eq, default = decl.partition("=")
                args[name] = overrides.get(name, default.strip("\"'") if eq else "")
        elif ins.keyword == "FROM":
            seen_from = True
            words = ins.args.split()
            if not words:
                continue
            image = _substitute(words[0], args)
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
            if image.lower() in stages or image == "scratch":
                continue
            found.append(BaseImage(ins.line, ins.text, image))
    return found


def normalize_image(name: str) -> str:
    """`foo` -> `docker.io/library/foo:latest`, as the engine resolves names."""
    ref, _, digest = name.partition("@")
    slash, colon = ref.rfind("/"), ref.rfind(":")
    if colon <= slash and not digest:
        ref += ":latest"
    first, _, rest = ref.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        ref = "docker.io/" + (ref if rest else "library/" + ref)
    return ref + ("@" + digest if digest else "")
