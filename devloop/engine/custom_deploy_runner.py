"""k8s_custom_deploy: a command deploys, prints the YAML of what it deployed; we watch it.

Like Tilt: the `image_deps` are built first and handed to `apply_cmd` as TILT_IMAGE_i
(the ref to deploy) and TILT_IMAGE_MAP_i (the image's name); the objects `apply_cmd`
prints on stdout are then monitored like any Kubernetes resource (pods, logs, forwards).
`delete_cmd` runs when the resource is removed or on `devloop down`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import yaml

from devloop.engine import k8s_runner
from devloop.engine.k8s_deploy import Deployed, ImageDeployer
from devloop.engine.local_runner import command_environment, kill_group, plan_environment
from devloop.engine.runner import ResourceRunner, RunnerContext, UpdateError
from devloop.model import plan as p

if TYPE_CHECKING:
    from devloop.engine.runner_registry import TeardownContext


def image_environment(refs: tuple[str, ...], deployed: dict[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for index, ref in enumerate(refs):
        if ref in deployed:
            env[f"TILT_IMAGE_{index}"] = deployed[ref]
            env[f"TILT_IMAGE_MAP_{index}"] = ref
    return env


def command_env(plan: p.Plan, spec: p.CommandSpec, extra: dict[str, str]) -> dict[str, str]:
    return command_environment(plan_environment(plan), spec) | extra


async def run_capturing(spec: p.CommandSpec, env: dict[str, str], log: Any,
                        what: str) -> str:
    """Run `spec`; stdout is returned, stderr goes to the log as it comes."""
    shown = spec.argv[-1] if spec.shell else " ".join(spec.argv)
    log(f"Running {what}: {shown}")
    process = await asyncio.create_subprocess_exec(
        *spec.argv, cwd=spec.dir or None, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)

    async def pump_stderr() -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            log(line.decode(errors="replace").rstrip("\n"))

    try:
        assert process.stdout is not None
        stdout, _ = await asyncio.gather(process.stdout.read(), pump_stderr())
        code = await process.wait()
    except asyncio.CancelledError:
        await kill_group(process)
        raise
    if code != 0:
        raise UpdateError(f"{what} {shown!r} failed with exit code {code}")
    return stdout.decode(errors="replace")


class ApplyCmdDeployer(ImageDeployer):
    """Build the images, run apply_cmd, read what it deployed from its output."""

    async def deploy(self) -> Deployed:
        """Returns no input digests: apply_cmd reads files of its own (`deps`), so
        unchanged images never mean an unchanged deploy."""
        images = await self.cluster.build_images(self.plan, self.resource.image_refs,
                                                 self._log)
        spec = self.resource.apply_cmd
        if spec is None:
            raise UpdateError("k8s_custom_deploy has no apply_cmd")
        output = await run_capturing(
            spec, command_env(self.plan, spec, image_environment(self.resource.image_refs,
                                                                 images)),
            self._log, "apply_cmd")
        try:
            manifests = [doc for doc in yaml.safe_load_all(output) if isinstance(doc, dict)]
        except yaml.YAMLError as exc:
            raise UpdateError(f"apply_cmd printed invalid YAML: {exc}") from None
        manifests = [item for doc in manifests for item in (
            doc.get("items", []) if doc.get("kind", "").endswith("List") else [doc])]
        self._log(f"apply_cmd deployed {len(manifests)} objects")
        return Deployed(manifests, images, output)


def make_runner(resource: p.Resource, plan: p.Plan, context: RunnerContext) -> ResourceRunner:
    """The runner of a `k8s_custom_deploy` resource (see `runner_registry`): a Kubernetes
    resource whose deploy is its apply_cmd."""
    if context.cluster is None:
        return k8s_runner.make_runner(resource, plan, context)
    hooks = context.hooks

    def log(text: str) -> None:
        hooks.log(resource.name, text, "build", "")

    return k8s_runner.K8sRunner(resource, plan=plan, cluster=context.cluster,
                                hooks=context.hooks, deployer=ApplyCmdDeployer(
                                    resource, plan=plan, cluster=context.cluster, log=log))


async def run_delete_cmd(plan: p.Plan, resource: p.Resource, log: Any) -> None:
    if resource.delete_cmd is not None:
        await run_capturing(resource.delete_cmd, command_env(plan, resource.delete_cmd, {}),
                            log, "delete_cmd")


async def tear_down(resource: p.Resource, plan: p.Plan, context: TeardownContext,
                    say: Callable[[str], None]) -> list[dict[str, Any]]:
    """The resource's delete_cmd, if it has one: what it deleted is not known, so nothing
    is returned to wait for."""
    await run_delete_cmd(plan, resource, say)
    return []
