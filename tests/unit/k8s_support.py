"""Test support for the Kubernetes area: evaluate a Tiltfile with the k8s and helm areas
plus a small stand-in for the image and data builtins, so these tests do not depend on
how other areas evolve (only on what the k8s area reads: `draft.images`)."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devloop.model import plan as p
from devloop.tiltfile.context import EvalContext, PlanDraft, blob, want_str_list
from devloop.tiltfile.evaluator import Evaluation, evaluate
from devloop.tiltfile.helm_area import HelmArea
from devloop.tiltfile.k8s_area import K8sArea
from devloop.tiltfile.links import link
from devloop.tiltfile.live_update import LiveUpdateSteps

FIXTURES = Path(__file__).parent / "fixtures" / "k8s"


class StandInArea:
    """docker_build / custom_build that only declare refs; blob, read_file, link."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.images: list[p.ImageTarget] = []
        self.live_update = LiveUpdateSteps(ctx)

    def builtins(self) -> Mapping[str, Any]:
        return {"docker_build": self.docker_build, "custom_build": self.custom_build,
                "blob": blob, "read_file": self.read_file, "link": link,
                "TRIGGER_MODE_AUTO": 0, "TRIGGER_MODE_MANUAL": 1,
                **self.live_update.builtins()}

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def contribute(self, draft: PlanDraft) -> None:
        draft.images.extend(self.images)

    def docker_build(self, ref: str, context: str = ".", match_in_env_vars: bool = False,
                     dockerfile_contents: str | None = None) -> None:
        self.images.append(p.DockerBuild(ref, self.ctx.abspath(context), "Dockerfile",
                                         dockerfile_contents=dockerfile_contents,
                                         match_in_env_vars=match_in_env_vars))

    def custom_build(self, ref: str, command: str = "", deps: Any = None,
                     image_deps: Any = None) -> None:
        self.images.append(p.CustomBuild(ref, ("sh", "-c", command), True,
                                         tuple(want_str_list("custom_build", "deps", deps)),
                                         image_deps=tuple(want_str_list(
                                             "custom_build", "image_deps", image_deps))))

    def read_file(self, path: str) -> dict[str, Any]:
        return blob(self.ctx.read_text(path, "read_file"))


def k8s_areas(ctx: EvalContext) -> list[Any]:
    return [StandInArea(ctx), K8sArea(ctx), HelmArea(ctx)]


def run_tiltfile(tmp_path: Path, text: str, files: dict[str, str] | None = None,
                 fixtures: tuple[str, ...] = ()) -> Evaluation:
    """Write files (and copies of fixture files/dirs) into tmp_path and evaluate."""
    for name in fixtures:
        source = FIXTURES / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    for rel, content in (files or {}).items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(content))
    path = tmp_path / "Tiltfile"
    path.write_text(textwrap.dedent(text))
    return evaluate(str(path), area_factory=k8s_areas)


def names(plan: p.Plan) -> list[str]:
    return [r.name for r in plan.resources]


def object_names(resource: p.Resource) -> list[str]:
    return [f"{o.kind}/{o.name}" for o in resource.objects]
