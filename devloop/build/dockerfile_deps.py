"""A docker_build's image dependencies from its Dockerfile, and the Dockerfile rewritten to
use the references devloop built for them.

Tilt finds the image dependencies of a docker_build by parsing its Dockerfile: when a FROM
or COPY --from (after substituting ARGs and `build_args`) names another image of the same
Tiltfile, that image is built first and the instruction is pointed at the reference just
built, so `FROM base` never goes to a public registry. The Dockerfile syntax is
devloop.model.dockerfile's; this module applies it to the plan.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from devloop.model import dockerfile
from devloop.model import plan as p
from devloop.model.images import parse_or_none


def _image_uses(text: str, image: p.DockerBuild) -> list[dockerfile.ImageUse]:
    return [use for use in dockerfile.image_uses(text, dict(image.build_args))
            if use.keyword in dockerfile.DEPENDENCY_KEYWORDS]


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


def dependencies(image: p.DockerBuild,
                 images: tuple[p.ImageTarget | p.LiveUpdateOnly, ...]) -> tuple[str, ...]:
    """Refs of the other images of the plan that `image`'s Dockerfile uses."""
    text = _dockerfile_text(image)
    if text is None:
        return ()
    found: list[str] = []
    for use in _image_uses(text, image):
        for other in images:
            if other.ref != image.ref and other.ref not in found and _same_image(
                    other.ref, use.ref):
                found.append(other.ref)
    return tuple(found)


def with_image_deps(plan: p.Plan) -> p.Plan:
    """The plan with each docker_build's `image_deps` filled from its Dockerfile (idempotent;
    reads the Dockerfiles, so call it off the loop when they may be slow to read)."""
    changed = False
    images: list[p.ImageTarget | p.LiveUpdateOnly] = []
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
    by_line: dict[int, str] = {}
    for use in _image_uses(text, image):
        for dep in deps:
            if _same_image(dep, use.ref):
                by_line.setdefault(use.line, built[dep])
                break
    if not by_line:
        return image
    lines = text.splitlines()
    # Bottom up, so that replacing an instruction's lines leaves the earlier line numbers as
    # they are; a continued instruction becomes one line.
    for ins in reversed(dockerfile.parse(text).instructions):
        if ins.line in by_line:
            lines[ins.line - 1:ins.end] = [_rewrite(ins, by_line[ins.line])]
    return dataclasses.replace(image, dockerfile_contents="\n".join(lines) + "\n")


def _rewrite(ins: dockerfile.Instruction, ref: str) -> str:
    words = ins.rest.split()
    if ins.keyword == "FROM":
        index = next(i for i, w in enumerate(words) if not w.startswith("--"))
        words[index] = ref
    else:
        words = [f"--from={ref}" if w.startswith("--from=") else w for w in words]
    return f"{ins.keyword} {' '.join(words)}"
