"""Images built by earlier sessions, found again by their inputs.

`devloop ci` on a fresh clone of a branch already built, or `up` after a restart, would
otherwise run every docker_build again: BuildKit answers each step from its cache, but
every build still pays for the CLI, the context upload and the export (0.3-1 s an image on
a 2-core machine). So each build's inputs are written down with the image ID they gave,
and a later session whose inputs are the same reuses that image (tagged again, pushed as
usual: a push of layers the registry has costs a round trip) instead of building.

A build's inputs are what decides the image:
- the filtered context's content digest (file names, modes, contents; not mtimes), which
  covers the Dockerfile as built (with the restart wrapper and the refs of images built
  first injected);
- the build options that change the result (build args, target, platform, network, extra
  hosts, the entrypoint);
- the ID of every image the Dockerfile uses (FROM, COPY --from, RUN --mount from=) as this
  machine's engine has it: after a `docker pull` of a newer base, the key changes.

A build is never reused when what it reads cannot be known here: secrets and ssh (their
contents), `pull=True` (asks for the newest base every time), an image the Dockerfile uses
that the engine does not have (the build would pull it), or an ARG in an image name that
no default or build arg sets. An entry is used only while the engine still has its image.

The file is `builds.json` in devloop's state directory, the newest MAX_ENTRIES entries,
replaced atomically (two sessions may write it at once: the last write wins, and a lost
entry costs one build). `DEVLOOP_BUILD_CACHE=0` turns the cache off.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from devloop.build import registry as reg
from devloop.build.context import dockerfile_source
from devloop.build.docker_builder import BuildError, BuiltImage, DockerBuilder
from devloop.model import dockerfile
from devloop.model import plan as p
from devloop.model.state_dir import state_dir

MAX_ENTRIES = 500
FILE_NAME = "builds.json"
# Bump when what goes into a key changes: older entries then simply never match.
KEY_VERSION = 1

ImageIdFn = Callable[[str], Awaitable[str | None]]  # ref -> the engine's image ID, or None


def enabled(env: Mapping[str, str] | None = None) -> bool:
    return (os.environ if env is None else env).get("DEVLOOP_BUILD_CACHE", "1") != "0"


def uncacheable(target: p.DockerBuild) -> str:
    """Why `target`'s build must always run ('' when it may be reused)."""
    if target.secret:
        return "it reads secrets"
    if target.ssh:
        return "it uses ssh"
    if target.pull:
        return "pull=True asks for the newest base image"
    return ""


async def input_key(target: p.DockerBuild, digest: str, dockerfile_text: str,
                    image_id: ImageIdFn) -> str | None:
    """The key of `target`'s inputs (see the module docstring), or None when they cannot
    all be known here. `digest` is the content digest of its filtered context."""
    if uncacheable(target):
        return None
    args = dict(target.build_args)
    uses: dict[str, str] = {}
    for use in dockerfile.image_uses(dockerfile_text, args):
        if "$" in use.ref:
            return None  # an image name an unset ARG decides
        if use.ref in uses:
            continue
        found = await image_id(use.ref)
        if found is None:
            return None  # the build would pull it: let it
        uses[use.ref] = found
    inputs = {"version": KEY_VERSION, "context": digest, "dockerfile": dockerfile_text,
              "args": sorted(args.items()), "target": target.target,
              "platform": target.platform, "network": target.network,
              "hosts": list(target.extra_hosts), "entrypoint": list(target.entrypoint),
              "images": sorted(uses.items())}
    encoded = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


class BuildCache:
    """The image ID each recorded set of inputs built (see the module docstring)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state_dir() / FILE_NAME
        # Images build in parallel, each recorded from a worker thread: one read-modify-write
        # at a time, so no entry of this session is lost (another session's may be).
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        entry = self._read().get(key)
        return str(entry["image"]) if entry else None

    def put(self, key: str, image_id: str) -> None:
        with self._lock:
            entries = self._read()
            entries[key] = {"image": image_id, "at": time.time()}
            newest = sorted(entries.items(), key=lambda item: float(item[1]["at"]),
                            reverse=True)[:MAX_ENTRIES]
            self._write(dict(newest))

    def forget(self, key: str) -> None:
        with self._lock:
            entries = self._read()
            if entries.pop(key, None) is not None:
                self._write(entries)

    def _read(self) -> dict[str, dict[str, str | float]]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: the builds run and write a new one
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items()
                if isinstance(v, dict) and isinstance(v.get("image"), str)
                and isinstance(v.get("at"), int | float)}

    def _write(self, entries: Mapping[str, Mapping[str, str | float]]) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(entries, handle)
            os.replace(temporary, self.path)
        except OSError:
            # A read-only home: every session builds, as without the cache.
            with contextlib.suppress(OSError):
                temporary.unlink()


class EarlierBuilds:
    """The cache as a session's image pipeline uses it: the key of a build, the image an
    earlier session built from the same inputs (tagged for this build), and the record of
    a new build."""

    def __init__(self, builder: DockerBuilder, cache: BuildCache | None = None) -> None:
        self.builder = builder
        self.cache = cache if cache is not None else (BuildCache() if enabled() else None)

    async def key(self, target: p.DockerBuild, digest: str) -> str | None:
        if self.cache is None:
            return None
        try:
            text = (await asyncio.to_thread(dockerfile_source, target)).decode(
                errors="replace")
        except OSError:
            return None  # the build says what is missing
        try:
            return await input_key(target, digest, text, self.builder.image_id)
        except BuildError:
            return None  # the engine cannot say: build, and let the build report it

    async def find(self, target: p.DockerBuild, key: str | None,
                   registry: reg.Registry | None) -> BuiltImage | None:
        if self.cache is None or key is None:
            return None
        image_id = await asyncio.to_thread(self.cache.get, key)
        if image_id is None:
            return None
        try:
            found = await self.builder.reuse(target, image_id, registry=registry)
        except BuildError:
            found = None
        if found is None:  # the engine no longer has it (docker image prune)
            await asyncio.to_thread(self.cache.forget, key)
        return found

    async def remember(self, key: str | None, built: BuiltImage) -> None:
        if self.cache is not None and key is not None:
            await asyncio.to_thread(self.cache.put, key, built.image_id)
