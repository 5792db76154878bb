"""Images a Dockerfile is built from (FROM, COPY --from), and the Dockerfile rewritten to use
the references devloop built for them.

Tilt finds the image dependencies of a docker_build by parsing its Dockerfile: when a FROM
(after substituting ARGs and `build_args`) names another image of the same Tiltfile, that
image is built first and the FROM is pointed at the reference just built, so `FROM base`
never goes to a public registry. The parser follows Dockerfile syntax where it matters
here: line continuations, the `escape` directive, comments, ARGs declared before the first
FROM (with `--build-arg` overrides), `${VAR}`/`${VAR:-default}`/`${VAR:+alt}`, `--platform`
flags and stage names (a FROM or COPY --from naming an earlier stage is not an image).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from devloop.images import parse_or_none
from devloop.tiltfile import plan as p

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$")
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-+])"
                       r"(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case), arguments and first line."""

    keyword: str
    args: str
    line: int


@dataclass(frozen=True)
class ImageUse:
    """An image a Dockerfile uses: the reference after substitution, where, and how it was
    written (to rewrite it)."""

    ref: str
    line: int
    keyword: str  # FROM or COPY


def instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined."""
    escape = "\\"
    lines = text.splitlines()
    # Parser directives come first, before any comment, blank line or instruction.
    for raw in lines:
        match = _DIRECTIVE.match(raw.strip())
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("\\", "`"):
            escape = match.group(2)
    out: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue  # comments and blank lines may sit inside a continued instruction
        if not stripped:
            continue
        if not pending:
            start = number
        if stripped.endswith(escape):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
    if pending.strip():
        keyword, _, args = pending.strip().partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
    return out


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Expand $VAR, ${VAR}, ${VAR:-default} and ${VAR:+alternative} like the builder does."""

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


def _arg_values(args: str) -> list[tuple[str, str | None]]:
    """`ARG a=1 b` -> [("a", "1"), ("b", None)]."""
    out: list[tuple[str, str | None]] = []
    for word in shlex.split(args, posix=True):
        name, eq, default = word.partition("=")
        out.append((name, default if eq else None))
    return out


def image_uses(text: str, build_args: Mapping[str, str]) -> list[ImageUse]:
    """Every image the Dockerfile builds from or copies from, in order, stages left out."""
    values: dict[str, str] = {}
    stages: set[str] = set()
    uses: list[ImageUse] = []
    seen_from = False
    for ins in instructions(text):
        if ins.keyword == "ARG" and not seen_from:
            # Only ARGs before the first FROM can be used in FROM lines.
            for name, default in _arg_values(ins.args):
                value = build_args.get(name, default if default is not None else "")
                values[name] = substitute(value, values)
        elif ins.keyword == "FROM":
            seen_from = True
            words = [w for w in ins.args.split() if not w.startswith("--")]
            if not words:
                continue
            ref = substitute(words[0], values)
            if ref.lower() not in stages and ref.lower() != "scratch":
                uses.append(ImageUse(ref, ins.line, "FROM"))
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
        elif ins.keyword == "COPY":
            for word in ins.args.split():
                if word.startswith("--from="):
                    ref = substitute(word[len("--from="):], values)
                    if ref.lower() not in stages and not ref.isdigit():
                        uses.append(ImageUse(ref, ins.line, "COPY"))
    return uses


def _dockerfile_text(image: p.DockerBuild) -> str | None:
    if image.dockerfile_contents is not None:
        return image.dockerfile_contents
    path = os.path.join(image.context, image.dockerfile)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None  # the build reports a missing Dockerfile with its own message


def _same_image(declared: str, used: str) -> bool:
    """Tilt's rule: a ref without a tag selects every tag of the same name."""
    mine, theirs = parse_or_none(declared), parse_or_none(used)
    return mine is not None and theirs is not None and mine.name == theirs.name and (
        not mine.tag or mine.tag == theirs.tag)


def dependencies(image: p.DockerBuild, images: tuple[p.ImageTarget, ...]) -> tuple[str, ...]:
    """Refs of the other images of the plan that `image`'s Dockerfile uses."""
    text = _dockerfile_text(image)
    if text is None:
        return ()
    found: list[str] = []
    for use in image_uses(text, dict(image.build_args)):
        for other in images:
            if other.ref != image.ref and other.ref not in found and _same_image(
                    other.ref, use.ref):
                found.append(other.ref)
    return tuple(found)


def with_image_deps(plan: p.Plan) -> p.Plan:
    """The plan with each docker_build's `image_deps` filled from its Dockerfile (idempotent;
    reads the Dockerfiles, so call it off the loop when they may be slow to read)."""
    changed = False
    images: list[p.ImageTarget] = []
    for image in plan.images:
        if isinstance(image, p.DockerBuild):
            deps = dependencies(image, plan.images)
            if deps != image.image_deps:
                image = dataclasses.replace(image, image_deps=deps)
                changed = True
        images.append(image)
    return dataclasses.replace(plan, images=tuple(images)) if changed else plan


def inject_built_refs(image: p.DockerBuild, built: Mapping[str, str]) -> p.DockerBuild:
    """`image` with every FROM/COPY --from that names one of its image_deps pointed at the
    reference built for it (`built`: dep ref -> built ref). The rewritten Dockerfile goes
    to the builder as `dockerfile_contents`; ARGs used in a rewritten line are resolved."""
    text = _dockerfile_text(image)
    deps = [dep for dep in image.image_deps if dep in built]
    if text is None or not deps:
        return image
    uses = image_uses(text, dict(image.build_args))
    by_line: dict[int, list[tuple[ImageUse, str]]] = {}
    for use in uses:
        for dep in deps:
            if _same_image(dep, use.ref):
                by_line.setdefault(use.line, []).append((use, built[dep]))
                break
    if not by_line:
        return image
    out: list[str] = []
    starts = {ins.line: ins for ins in instructions(text)}
    lines = text.splitlines()
    skip_until = 0
    for number, raw in enumerate(lines, start=1):
        if number <= skip_until:
            continue
        if number in by_line:
            ins = starts[number]
            # The instruction may span continued lines: replace all of them with one.
            span = _span(lines, number, ins)
            skip_until = number + span - 1
            out.append(_rewrite(ins, by_line[number]))
            continue
        out.append(raw)
    return dataclasses.replace(image, dockerfile_contents="\n".join(out) + "\n")


def _span(lines: list[str], start: int, ins: Instruction) -> int:
    """How many physical lines the instruction starting at `start` takes."""
    count = 1
    index = start - 1
    while index < len(lines) and lines[index].rstrip().endswith(("\\", "`")):
        index += 1
        count += 1
    return min(count, len(lines) - start + 1)


def _rewrite(ins: Instruction, replacements: list[tuple[ImageUse, str]]) -> str:
    words = ins.args.split()
    ref = replacements[0][1]
    if ins.keyword == "FROM":
        index = next(i for i, w in enumerate(words) if not w.startswith("--"))
        words[index] = ref
    else:
        words = [f"--from={ref}" if w.startswith("--from=") else w for w in words]
    return f"{ins.keyword} {' '.join(words)}"
