"""custom_build: run the user's build command the way Tilt does, then find its image.

The command runs with the Tiltfile's environment plus `env=`, in `dir=`, and with:

- `EXPECTED_REF`: the ref the command must produce, `<repo>:devloop-build-<unix time>`
  where `<repo>` is the image's name in the registry (Tilt: `tilt-build-<time>`);
- `EXPECTED_REGISTRY` (and the older `REGISTRY_HOST`): the registry host, when there is one;
- `EXPECTED_IMAGE`, `EXPECTED_TAG`: the path and tag parts of `EXPECTED_REF`;
- `TILT_IMAGE_MAP_i` / `TILT_IMAGE_i` for each of `image_deps` (the dep's ref, its built ref).

With `tag=` the command is expected to build `<name without registry>:<tag>` instead. With
`outputs_image_ref_to=` the command writes the ref it built to that file and that ref is
used as is (no content tag). Unless `skips_local_docker`, the image must then exist in the
local engine and gets the content tag `devloop-<16 hex of its ID>`, like docker_build's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from devloop.build import registry as reg
from devloop.build.docker_builder import BuildError, BuiltImage, content_tag
from devloop.model import plan

LogFn = Callable[[str], None]


class LocalImages(Protocol):
    """What a custom build needs from the Docker seam (DockerBuilder implements it)."""

    async def image_id(self, ref: str) -> str | None: ...

    async def tag(self, image_id: str, repo: str, tag: str) -> None: ...


def _path_of(name: str) -> str:
    """The name without its registry domain (docker's `reference.Path`)."""
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return rest
    return name


def expected_ref(target: plan.CustomBuild, registry: reg.Registry | None, now: float) -> str:
    if target.tag:
        # A script that picks its own tag does not know about the registry either.
        return f"{reg.local_name(target.ref, None)}:{target.tag}"
    suffix = reg.tag_for(target.ref, f"devloop-build-{int(now)}", registry)
    return f"{reg.local_name(target.ref, registry)}:{suffix}"


def build_env(target: plan.CustomBuild, registry: reg.Registry | None, ref: str | None,
              image_deps: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env.update(dict(target.env))
    if ref is not None:
        parsed = reg.parse_ref(ref)
        env["EXPECTED_REF"] = ref
        env["EXPECTED_IMAGE"] = _path_of(parsed.name)
        env["EXPECTED_TAG"] = parsed.tag
    if registry is not None:
        env["EXPECTED_REGISTRY"] = registry.host
        env["REGISTRY_HOST"] = registry.host
    for i, dep in enumerate(target.image_deps):
        env[f"TILT_IMAGE_MAP_{i}"] = dep
        if dep in image_deps:
            env[f"TILT_IMAGE_{i}"] = image_deps[dep]
    return env


def needs_push(target: plan.CustomBuild, registry: reg.Registry | None,
               cluster_shares_engine: bool) -> bool:
    """Whether the engine pushes this custom build's image (a command that skips the local
    engine pushes by itself)."""
    return (registry is not None and not target.disable_push and not target.skips_local_docker
            and not cluster_shares_engine)


class CustomBuilder:
    """Runs `plan.CustomBuild` commands and returns the image they produced."""

    def __init__(self, images: LocalImages, *, clock: Callable[[], float] = time.time) -> None:
        self._images = images
        self._clock = clock

    async def build(self, target: plan.CustomBuild, *, log: LogFn,
                    registry: reg.Registry | None = None,
                    image_deps: Mapping[str, str] | None = None,
                    environ: Mapping[str, str] | None = None) -> BuiltImage:
        ref_file = ""
        ref: str | None = None
        if target.outputs_image_ref_to:
            ref_file = os.path.join(target.dir or os.getcwd(), target.outputs_image_ref_to)
            # A stale file from the last build must not pass for this build's output.
            await asyncio.to_thread(_remove_quietly, ref_file)
        else:
            ref = expected_ref(target, registry, self._clock())
        env = build_env(target, registry, ref, image_deps or {},
                        os.environ if environ is None else environ)
        log("Custom Build: Injecting Environment Variables")
        for key in ("EXPECTED_REF", "EXPECTED_REGISTRY", "EXPECTED_IMAGE", "EXPECTED_TAG"):
            if key in env:
                log(f"  {key}={env[key]}")
        await self._run(target, env, log)

        if ref_file:
            ref = await asyncio.to_thread(_read_ref, ref_file)
        assert ref is not None
        parsed = reg.parse_ref(ref)
        if target.skips_local_docker:
            return BuiltImage(ref=ref, image_id="", repo=parsed.name, tag=parsed.tag)
        image_id = await self._images.image_id(ref)
        if image_id is None:
            raise BuildError(
                f"custom_build {target.ref!r}: could not find image {ref} in Docker. Did the "
                "command tag the image $EXPECTED_REF? If it does not use the local Docker "
                "engine, set skips_local_docker=True.")
        if ref_file:
            return BuiltImage(ref=ref, image_id=image_id, repo=parsed.name, tag=parsed.tag)
        repo = reg.local_name(target.ref, registry)
        tag = reg.tag_for(target.ref, content_tag(image_id), registry)
        await self._images.tag(image_id, repo, tag)
        return BuiltImage(ref=f"{repo}:{tag}", image_id=image_id, repo=repo, tag=tag)

    async def _run(self, target: plan.CustomBuild, env: dict[str, str], log: LogFn) -> None:
        # A string command runs through the shell once, a list as argv without one,
        # exactly as local() does. The Tiltfile gives a string as ("sh", "-c", text).
        argv = list(target.command)
        if target.shell and argv[:2] != ["sh", "-c"]:
            argv = ["sh", "-c", " ".join(argv)]
        if not argv:
            raise BuildError(f"custom_build {target.ref!r}: empty command")
        shown = _shown(target)
        log(f"Running custom build cmd {shown!r}")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=target.dir or None, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        except OSError as e:
            raise BuildError(f"custom_build {target.ref!r}: cannot run {argv[0]!r}: {e}") from e
        tail: list[str] = []
        assert proc.stdout is not None
        try:
            async for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\r\n")
                tail.append(line)
                del tail[:-40]
                log(line)
            code = await proc.wait()
        except asyncio.CancelledError:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if code != 0:
            raise BuildError(f"custom_build {target.ref!r}: command {shown!r} "
                             f"exited with code {code}", "\n".join(tail))


def _shown(target: plan.CustomBuild) -> str:
    """The command as the user wrote it: the shell text, or the argv joined for a shell."""
    if target.shell:
        return target.command[2] if target.command[:2] == ("sh", "-c") else " ".join(
            target.command)
    return shlex.join(target.command)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _read_ref(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            ref = f.read().strip()
    except OSError as e:
        raise BuildError(f"could not find the image ref: the custom_build command should "
                         f"have written it to {path}: {e}") from e
    try:
        parsed = reg.parse_ref(ref)
    except ValueError as e:
        raise BuildError(f"the image ref in {path} is invalid: {ref!r}") from e
    if not parsed.tag:
        raise BuildError(f"the image ref in {path} has no tag: {ref!r}")
    return ref
