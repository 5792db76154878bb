"""A docker_build FROM (and COPY --from) another image of the Tiltfile, against the real
Docker engine: the dependency is found in the Dockerfile, built first, and the dependent
build uses the image just built instead of pulling a name no registry has."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import docker
import pytest

from devloop.build.docker_builder import BuilderKind, DockerBuilder
from devloop.build.dockerfile_deps import inject_built_refs, with_image_deps
from devloop.model import plan

from .conftest import K8sTestEnv

pytestmark = pytest.mark.integration


def _target(directory: Path, ref: str, dockerfile: str, **kwargs: object) -> plan.DockerBuild:
    directory.mkdir()
    (directory / "Dockerfile").write_text(dockerfile)
    return plan.DockerBuild(ref=ref, context=str(directory), dockerfile="Dockerfile",
                            **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [BuilderKind.BUILDKIT, BuilderKind.LEGACY])
def test_an_image_built_from_another_uses_the_one_just_built(
        testenv: K8sTestEnv, tmp_path: Path, kind: BuilderKind) -> None:
    # A name that is in no registry: only the injected reference can make the build work.
    base_ref = f"devloop-dep-base-{uuid.uuid4().hex[:8]}"
    base = _target(tmp_path / "base", base_ref, "FROM busybox\nRUN echo from-base > /marker\n")
    app = _target(tmp_path / "app", "devloop-dep-app",
                  "ARG BASE=busybox\n# the base, continued over a comment\nFROM \\\n"
                  "# its name comes from a build arg\n  ${BASE} AS run\n"
                  f"COPY --from={base_ref} /marker /copied\n",
                  build_args=(("BASE", base_ref),))
    resolved = with_image_deps(plan.Plan(tiltfile=str(tmp_path / "Tiltfile"), images=(base, app)))
    app = next(i for i in resolved.images if i.ref == app.ref)
    assert isinstance(app, plan.DockerBuild) and app.image_deps == (base_ref,)

    client = docker.from_env()
    created: list[str] = []
    try:
        builder = DockerBuilder(kind=kind)
        built_base = asyncio.run(builder.build(base, log=lambda _: None))
        created.append(built_base.image_id)
        injected = inject_built_refs(app, {base_ref: built_base.ref})
        built_app = asyncio.run(builder.build(injected, log=lambda _: None))
        created.append(built_app.image_id)
        out = client.containers.run(built_app.ref, ["cat", "/marker", "/copied"], remove=True)
        assert out.decode() == "from-base\nfrom-base\n"
    finally:
        for image_id in reversed(created):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image_id, force=True)
        client.close()
