"""The `docker compose` CLI for one project, called as a subprocess (never on the loop's thread).

The project arguments are the ones Tilt passes (`--project-name`, `--project-directory`,
`--env-file`, `-f` for every file in order, `--profile` for every profile), so Compose sees
exactly the project the Tiltfile declared, overrides and .env included. `up` is not safe to
run twice at once for one project (network creation is not atomic), so one lock per project
serialises the calls that create or remove containers; `build` runs in parallel.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from devloop.model import plan as p

LogFn = Callable[[str], None]
# How much of a failed command's output its error carries.
ERROR_TAIL_LINES = 30


class ComposeError(Exception):
    """A `docker compose` command failed; the message has the command and its output."""


@dataclass(frozen=True)
class CommandResult:
    code: int
    output: str


def project_args(project: p.ComposeProject) -> list[str]:
    """The global flags that select the project, in Tilt's order."""
    args: list[str] = []
    if project.project_name:
        args += ["--project-name", project.project_name]
    if project.project_dir:
        args += ["--project-directory", project.project_dir]
    if project.env_file:
        args += ["--env-file", project.env_file]
    for path in project.config_paths:
        args += ["-f", path]
    for profile in project.profiles:
        args += ["--profile", profile]
    return args


def compose_command() -> list[str]:
    """`docker compose`, or what DEVLOOP_DOCKER_COMPOSE_CMD names (e.g. a standalone binary)."""
    override = os.environ.get("DEVLOOP_DOCKER_COMPOSE_CMD", "")
    return override.split() if override else ["docker", "compose"]


class ComposeCli:
    """The commands devloop runs for one Compose project."""

    def __init__(self, project: p.ComposeProject, *, environ: dict[str, str] | None = None
                 ) -> None:
        self.project = project
        self.environ = dict(os.environ if environ is None else environ)
        self._lock = asyncio.Lock()

    def argv(self, *args: str) -> list[str]:
        return [*compose_command(), *project_args(self.project), *args]

    async def run(self, *args: str, log: LogFn | None = None) -> CommandResult:
        """Run one command; its output lines go to `log` as they come."""
        argv = self.argv(*args)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=self.environ,
                cwd=self.project.project_dir or None)
        except OSError as exc:
            raise ComposeError(f"cannot run {argv[0]}: {exc.strerror}") from None
        lines: list[str] = []
        assert process.stdout is not None
        try:
            while raw := await process.stdout.readline():
                line = raw.decode(errors="replace").rstrip("\n")
                lines.append(line)
                if log is not None:
                    log(line)
            code = await process.wait()
        except asyncio.CancelledError:
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
        return CommandResult(code, "\n".join(lines))

    async def check(self, *args: str, log: LogFn | None = None, locked: bool = False) -> str:
        """Run a command that must succeed; ComposeError with its output tail otherwise."""
        if locked:
            async with self._lock:
                result = await self.run(*args, log=log)
        else:
            result = await self.run(*args, log=log)
        if result.code != 0:
            tail = "\n".join(result.output.splitlines()[-ERROR_TAIL_LINES:])
            raise ComposeError(f"`docker compose {' '.join(args)}` failed with exit code "
                               f"{result.code}" + (f":\n{tail}" if tail else ""))
        return result.output

    # -- the commands
    async def build(self, service: str, *, log: LogFn) -> None:
        await self.check("build", service, log=log)

    async def up(self, service: str, *, log: LogFn) -> None:
        args = ["up", "--no-deps", "--remove-orphans", "--no-build", "-d"]
        if self.project.wait:
            args.append("--wait")
        await self.check(*args, service, log=log, locked=True)

    async def remove(self, services: Sequence[str], *, log: LogFn) -> None:
        """Stop and remove the services' containers (what disabling a resource does)."""
        await self.check("rm", "--stop", "--force", *services, log=log, locked=True)

    async def down(self, *, volumes: bool, log: LogFn) -> None:
        args = ["down", "--remove-orphans"]
        if volumes:
            args.append("--volumes")
        await self.check(*args, log=log, locked=True)

    async def config(self) -> dict[str, Any]:
        """The effective configuration as Compose resolves it (interpolated, merged)."""
        output = await self.check("config", "--format", "json")
        # Warnings may precede the JSON document on the same stream.
        start = output.find("{")
        try:
            loaded = json.loads(output[start:]) if start >= 0 else {}
        except json.JSONDecodeError as exc:
            raise ComposeError(f"`docker compose config` printed no JSON: {exc}") from None
        return loaded if isinstance(loaded, dict) else {}

    async def version(self) -> str:
        return (await self.check("version", "--short")).strip()
