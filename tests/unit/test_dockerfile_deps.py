"""Image dependencies of a plan's docker_builds and the refs injected into their
Dockerfiles (build/dockerfile_deps.py); the syntax itself is tested in test_dockerfile.py."""

from __future__ import annotations

from pathlib import Path

from devloop.build.dockerfile_deps import dependencies, inject_built_refs, with_image_deps
from devloop.model import plan as p


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


def test_a_continued_from_with_a_comment_inside_is_rewritten_whole(tmp_path):
    app = _build(tmp_path, "app", "FROM \\\n# the base\n  base:1 \\\n  AS run\nRUN true\n",
                 image_deps=("base",))
    injected = inject_built_refs(app, {"base": "localhost:5000/base:devloop-1"})
    assert injected.dockerfile_contents == "FROM localhost:5000/base:devloop-1 AS run\nRUN true\n"


def test_a_run_mount_is_not_a_dependency(tmp_path):
    tools = _build(tmp_path, "tools", "FROM busybox\n")
    app = _build(tmp_path, "app", "FROM busybox\nRUN --mount=from=tools,target=/t true\n")
    assert dependencies(app, (tools, app)) == ()
