"""Dockerfile FROM parsing for image dependencies (build/dockerfile_deps.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.build.dockerfile_deps import (
    dependencies,
    image_uses,
    inject_built_refs,
    instructions,
    substitute,
    with_image_deps,
)
from devloop.tiltfile import plan as p


def refs(text: str, **build_args: str) -> list[str]:
    return [use.ref for use in image_uses(text, build_args)]


@pytest.mark.parametrize(("text", "expected"), [
    ("FROM base\nRUN true\n", ["base"]),
    ("FROM --platform=linux/amd64 base:1.2 AS build\n", ["base:1.2"]),
    ("FROM base AS build\nFROM build\nCOPY --from=build /a /b\n", ["base"]),
    ("FROM scratch\nCOPY --from=tools /bin/x /x\n", ["tools"]),
    ("FROM a AS one\nFROM b\nCOPY --from=0 /x /y\n", ["a", "b"]),
    ("ARG BASE=base\nFROM ${BASE}\n", ["base"]),
    ("ARG BASE\nFROM ${BASE:-fallback}:latest\n", ["fallback:latest"]),
    ("ARG V=1\nFROM img:$V\n", ["img:1"]),
    ("# comment\nFROM \\\n  base\n", ["base"]),
    ("# escape=`\nFROM `\n  base\n", ["base"]),
    ("FROM base\nARG LATE=x\nFROM other:${LATE}\n", ["base", "other:"]),
])
def test_images_used_after_substitution_without_stage_names(text, expected):
    assert refs(text) == expected


def test_build_args_override_arg_defaults():
    assert refs("ARG BASE=public\nFROM $BASE\n", BASE="mine") == ["mine"]
    assert refs("ARG T\nFROM x:${T:+tagged}\n", T="1") == ["x:tagged"]


def test_instructions_keep_their_first_line_number():
    found = instructions("FROM a\n\n# c\nRUN echo \\\n  one \\\n  two\nCMD x\n")
    assert [(i.keyword, i.line) for i in found] == [("FROM", 1), ("RUN", 4), ("CMD", 7)]


def test_substitute_leaves_unknown_variables_empty():
    assert substitute("${A}-$B-${C:-c}", {"A": "a"}) == "a--c"


def _build(tmp_path: Path, name: str, dockerfile: str, **kwargs) -> p.DockerBuild:
    context = tmp_path / name
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(dockerfile)
    return p.DockerBuild(ref=name, context=str(context), dockerfile="Dockerfile", **kwargs)


def test_an_image_from_another_image_of_the_plan_depends_on_it(tmp_path):
    base = _build(tmp_path, "base", "FROM python:3.11-slim\n")
    app = _build(tmp_path, "app", "FROM base\nCOPY . /app\n")
    plan = p.Plan(tiltfile=str(tmp_path / "Tiltfile"), images=(base, app))
    assert dependencies(app, plan.images) == ("base",)
    assert dependencies(base, plan.images) == ()
    resolved = with_image_deps(plan)
    assert [i.ref for i in resolved.images_for(("app",))] == ["base", "app"]
    assert with_image_deps(resolved) is resolved  # idempotent


def test_a_build_arg_chooses_the_dependency(tmp_path):
    base = _build(tmp_path, "registry.example/team/base", "FROM busybox\n")
    app = _build(tmp_path, "app", "ARG BASE=busybox\nFROM ${BASE}:dev\n",
                 build_args=(("BASE", "registry.example/team/base"),))
    assert dependencies(app, (base, app)) == ("registry.example/team/base",)


def test_the_built_reference_is_injected_into_the_dockerfile(tmp_path):
    app = _build(tmp_path, "app", "ARG B=base\nFROM \\\n  ${B} AS run\nCOPY --from=base /x /x\n"
                 "CMD [\"run\"]\n", image_deps=("base",))
    injected = inject_built_refs(app, {"base": "localhost:5000/base:devloop-123"})
    assert injected.dockerfile_contents == (
        "ARG B=base\nFROM localhost:5000/base:devloop-123 AS run\n"
        "COPY --from=localhost:5000/base:devloop-123 /x /x\nCMD [\"run\"]\n")
    assert inject_built_refs(app, {}) == app
