"""local_resource: `cmd` runs on each update; `serve_cmd` is a long-running process.

Processes run in their own session so that stopping one kills its whole process group
(a serve_cmd like `npm start` spawns children that would otherwise outlive it).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
import urllib.request

from devloop.engine.runner import (
    ResourceRunner,
    RunnerContext,
    RunnerHooks,
    RuntimeReport,
    UpdateError,
)
from devloop.engine.scheduler import RuntimeState
from devloop.engine.tasks import cancel_and_wait, resource_reporter, spawn
from devloop.model import plan as p

STOP_GRACE_SECONDS = 5.0
READ_CHUNK_BYTES = 64 * 1024
# Longer output lines are logged in pieces: a round figure, far beyond any line a person
# reads, small enough that one line never weighs on a resource's log budget.
MAX_LINE_CHARS = 64 * 1024


def plan_environment(plan: p.Plan) -> dict[str, str]:
    """devloop's environment with the Tiltfile's os.environ changes on top."""
    env = dict(os.environ)
    env.update(dict(plan.environ))
    return env


def command_environment(base: dict[str, str], spec: p.CommandSpec) -> dict[str, str]:
    env = dict(base)
    env.update(dict(spec.env))
    return env


async def _pump(stream: asyncio.StreamReader | None, hooks: RunnerHooks, name: str,
                source: str) -> None:
    """Log the process's output line by line. Not readline(): it fails on a line longer than
    the reader's 64 KiB limit, which ended the log reader (and failed a cmd that succeeded).
    A line longer than MAX_LINE_CHARS is logged in pieces of that size, so nothing is lost and
    memory stays bounded."""
    if stream is None:
        return
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while True:
        data = await stream.read(READ_CHUNK_BYTES)
        text = pending + decoder.decode(data, final=not data)
        lines = text.split("\n")
        pending = lines.pop()
        while len(pending) > MAX_LINE_CHARS:
            lines.append(pending[:MAX_LINE_CHARS])
            pending = pending[MAX_LINE_CHARS:]
        for line in lines:
            hooks.log(name, line, source, "")
        if not data:
            if pending:
                hooks.log(name, pending, source, "")
            return


async def kill_group(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


async def start_process(spec: p.CommandSpec, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *spec.argv, cwd=spec.dir or None, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True)


class LocalRunner:
    def __init__(self, resource: p.Resource, *, environ: dict[str, str],
                 hooks: RunnerHooks) -> None:
        self.name = resource.name
        self.resource = resource
        self.environ = environ
        self.hooks = hooks
        self._serve: asyncio.subprocess.Process | None = None
        self._serve_tasks: list[asyncio.Task[None]] = []
        self._report = RuntimeReport(RuntimeState.NOT_APPLICABLE if resource.serve_cmd is None
                                     else RuntimeState.PENDING)
        self._lock = asyncio.Lock()

    async def update(self, changed_files: tuple[str, ...]) -> None:
        async with self._lock:
            if self.resource.cmd is not None:
                await self._run_cmd(self.resource.cmd)
            if self.resource.serve_cmd is not None:
                await self._restart_serve(self.resource.serve_cmd)

    async def _run_cmd(self, spec: p.CommandSpec) -> None:
        shown = spec.argv[-1] if spec.shell else " ".join(spec.argv)
        self.hooks.log(self.name, f"Running cmd: {shown}", "local", "")
        try:
            process = await start_process(spec, command_environment(self.environ, spec))
        except OSError as exc:
            raise UpdateError(f"cannot start {shown!r}: {exc}") from None
        try:
            await _pump(process.stdout, self.hooks, self.name, "local")
            code = await process.wait()
        except asyncio.CancelledError:
            await kill_group(process)
            raise
        if code != 0:
            raise UpdateError(f"command {shown!r} failed with exit code {code}")

    async def _restart_serve(self, spec: p.CommandSpec) -> None:
        await self._stop_serve()
        shown = spec.argv[-1] if spec.shell else " ".join(spec.argv)
        self.hooks.log(self.name, f"Starting serve_cmd: {shown}", "local", "")
        try:
            self._serve = await start_process(spec, command_environment(self.environ, spec))
        except OSError as exc:
            raise UpdateError(f"cannot start serve_cmd {shown!r}: {exc}") from None
        self._set(RuntimeState.PENDING, "starting")
        process = self._serve
        report = resource_reporter(self.hooks, self.name)
        self._serve_tasks = [
            spawn(_pump(process.stdout, self.hooks, self.name, "local"),
                  name=f"serve-logs:{self.name}", resource=self.name, on_error=report),
            spawn(self._watch_exit(process), name=f"serve-exit:{self.name}",
                  resource=self.name, on_error=report),
        ]
        if self.resource.readiness_probe is not None:
            self._serve_tasks.append(spawn(
                self._probe_loop(self.resource.readiness_probe), name=f"probe:{self.name}",
                resource=self.name, on_error=report))
        else:
            self._set(RuntimeState.OK, "serving")

    async def _watch_exit(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if process is self._serve:
            self._set(RuntimeState.ERROR, f"serve_cmd exited with code {code}",
                      alert=f"serve_cmd exited with code {code}")

    async def _probe_loop(self, probe: p.Probe) -> None:
        await asyncio.sleep(probe.initial_delay_secs)
        successes = failures = 0
        while True:
            ok = await probe_once(probe, self.environ, cwd=self.resource.serve_cmd.dir
                                  if self.resource.serve_cmd else "")
            if ok:
                successes, failures = successes + 1, 0
                if successes >= probe.success_threshold:
                    self._set(RuntimeState.OK, "ready")
            else:
                successes, failures = 0, failures + 1
                if failures >= probe.failure_threshold and self._report.state == RuntimeState.OK:
                    self._set(RuntimeState.PENDING, "readiness probe failing",
                              alert="readiness probe failing")
            await asyncio.sleep(probe.period_secs)

    def _set(self, state: RuntimeState, reason: str, alert: str = "") -> None:
        self._report = RuntimeReport(state, reason, [alert] if alert else [])
        self.hooks.changed()

    def runtime(self) -> RuntimeReport:
        return self._report

    async def _stop_serve(self) -> None:
        await cancel_and_wait(*self._serve_tasks)
        self._serve_tasks = []
        if self._serve is not None:
            process, self._serve = self._serve, None
            await kill_group(process)

    async def stop(self) -> None:
        await self._stop_serve()


async def probe_once(probe: p.Probe, environ: dict[str, str], *, cwd: str = "") -> bool:
    action = probe.action
    try:
        if isinstance(action, p.HttpGetAction):
            url = f"{action.scheme}://{action.host}:{action.port}/{action.path.lstrip('/')}"
            return await asyncio.wait_for(asyncio.to_thread(_http_ok, url, probe.timeout_secs),
                                          probe.timeout_secs + 1)
        if isinstance(action, p.TcpSocketAction):
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(action.host, action.port), probe.timeout_secs)
            writer.close()
            return True
        process = await asyncio.create_subprocess_exec(
            *action.command, env=environ, cwd=cwd or None, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        return await asyncio.wait_for(process.wait(), probe.timeout_secs) == 0
    except (OSError, TimeoutError):
        return False


def make_runner(resource: p.Resource, plan: p.Plan, context: RunnerContext) -> ResourceRunner:
    """The runner of a `local_resource` (see `runner_registry`)."""
    return LocalRunner(resource, environ=plan_environment(plan), hooks=context.hooks)


def _http_ok(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            status: int = response.status
            return 200 <= status < 400
    except OSError:
        return False
