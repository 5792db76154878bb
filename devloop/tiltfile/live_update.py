"""Live update steps: the step builtins and the validation of a `live_update=[...]` list.

Shared by docker_build, custom_build and k8s_custom_deploy. A step is created by its own
builtin (`sync`, `run`, ...) and only becomes part of an image when a list of steps is passed
as `live_update=`; `parse_live_update` enforces Tilt's ordering rules there:

    initial_sync()       at most once, first
    fall_back_on(files)  before any sync or run
    sync(local, remote)  before any run; remote path absolute
    run(cmd, trigger)    after the syncs
    restart_container()  last

Paths are made absolute where the step is written (the calling file's directory), like Tilt.
Each step also carries `__str`, what Tilt's str(step) gives ("sync step: 'a'->'/b'"):
extensions parse it (file_sync_only splits it on quotes).

Whether sync sources and fall_back_on files lie under watched paths is checked once the
Tiltfile has run (`check_watched_paths`), like Tilt: an image's syncs may read from any
image of its dependency tree (restart_process' docker_build_with_restart builds the user's
context as a base image and live-updates the image built on top of it).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from devloop.model import plan as p
from devloop.tiltfile.context import (
    EvalContext,
    is_blob,
    struct,
    struct_kind,
    type_name,
    want_bool,
    want_str,
    want_str_list,
)
from devloop.tiltfile.errors import BuiltinError

# Tilt's Starlark type names for the step values (what `type(step)` answers).
SYNC = "live_update_sync_step"
RUN = "live_update_run_step"
FALL_BACK_ON = "live_update_fall_back_on_step"
RESTART = "live_update_restart_container_step"
INITIAL_SYNC = "live_update_initial_sync_step"
STEP_KINDS = (SYNC, RUN, FALL_BACK_ON, RESTART, INITIAL_SYNC)


class LiveUpdateSteps:
    """The step builtins; registered by the docker area, usable by every area."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx

    def builtins(self) -> Mapping[str, Callable[..., Any]]:
        return {"sync": self.sync, "run": self.run, "fall_back_on": self.fall_back_on,
                "restart_container": self.restart_container,
                "initial_sync": self.initial_sync}

    def _where(self) -> str:
        location = self.ctx.location()
        return str(location) if location else ""

    def sync(self, local_path: Any, remote_path: Any) -> dict[str, Any]:
        """sync(local_path, remote_path): copy changed files under `local_path` (relative to
        this file) to `remote_path` in the container; files deleted locally are deleted
        there too. `local_path` must be inside the image's build context (or deps)."""
        local = self.ctx.abspath(want_str("sync", "local_path", local_path, allow_blob=False))
        remote = want_str("sync", "remote_path", remote_path, allow_blob=False)
        return struct(SYNC, local_path=local, remote_path=remote, __pos=self._where(),
                      __str=f"sync step: '{local}'->'{remote}'")

    def run(self, cmd: Any, trigger: Any = None, echo_off: Any = False) -> dict[str, Any]:
        """run(cmd, trigger=[], echo_off=False): run `cmd` in the container after the syncs
        (a string runs with `sh -c`, a list as argv). With `trigger`, only when a changed
        file matches one of those paths (relative to this file)."""
        if isinstance(cmd, str) or is_blob(cmd):
            text = want_str("run", "cmd", cmd)
            if not text:
                raise BuiltinError("run: for parameter 'cmd': command is empty")
            argv, shell = ["sh", "-c", text], True
        elif isinstance(cmd, list | tuple):
            argv, shell = want_str_list("run", "cmd", cmd), False
            if not argv:
                raise BuiltinError("run: for parameter 'cmd': command is empty")
        else:
            raise BuiltinError(f"run: for parameter 'cmd': got {type_name(cmd)}, "
                               "want string or list of strings")
        triggers = [self.ctx.abspath(t) for t in want_str_list("run", "trigger", trigger)]
        shown = json.dumps(argv[2] if shell else " ".join(argv))
        if triggers:
            shown += f" (triggers: {'; '.join(triggers)})"
        return struct(RUN, cmd=argv, shell=shell, trigger=triggers,
                      echo_off=want_bool("run", "echo_off", echo_off), __pos=self._where(),
                      __str=f"run step: {shown}")

    def fall_back_on(self, files: Any) -> dict[str, Any]:
        """fall_back_on(files): a change to any of these files (relative to this file) does a
        full image rebuild instead of a live update. Must come first in the list."""
        paths = [self.ctx.abspath(f) for f in want_str_list("fall_back_on", "files", files)]
        return struct(FALL_BACK_ON, files=paths, __pos=self._where(),
                      __str=f"fall_back_on step: [{' '.join(paths)}]")

    def restart_container(self) -> dict[str, Any]:
        """restart_container(): restart the container after the update; last step only.
        Tilt supports it for Docker Compose; for Kubernetes it recommends restart_process."""
        return struct(RESTART, __pos=self._where(), __str="restart_container step")

    def initial_sync(self) -> dict[str, Any]:
        """initial_sync(): upload every sync path when a container starts; first step only."""
        return struct(INITIAL_SYNC, __pos=self._where(), __str="initial_sync step")


def describe(step: Mapping[str, Any]) -> str:
    """How an error names a step: the call as written-ish plus where it was written."""
    kind = struct_kind(step)
    if kind == SYNC:
        text = f"sync('{step['local_path']}', '{step['remote_path']}')"
    elif kind == RUN:
        shown = step["cmd"][2] if step["shell"] else " ".join(step["cmd"])
        text = f"run('{shown}')"
    elif kind == FALL_BACK_ON:
        text = f"fall_back_on({step['files']})"
    elif kind == RESTART:
        text = "restart_container()"
    else:
        text = "initial_sync()"
    where = step.get("__pos", "")
    return f"{text} at {where}" if where else text


def parse_live_update(fn: str, steps: Any, ctx: EvalContext
                      ) -> tuple[p.LiveUpdateStep, ...]:
    """Validate a `live_update=` value (a step or a list of steps) into plan steps: their
    order and remote paths. `ctx` is the evaluation the steps belong to; steps already
    carry absolute paths. Local paths are checked later, by `check_watched_paths`."""
    if steps is None:
        return ()
    items = list(steps) if isinstance(steps, list | tuple) else [steps]
    result: list[p.LiveUpdateStep] = []
    seen_any = no_more_fallbacks = no_more_syncs = no_more_runs = False
    has_work = False
    for item in items:
        kind = struct_kind(item)
        if kind not in STEP_KINDS:
            raise BuiltinError(f"{fn}: live_update: 'steps' must be a list of live update "
                               f"steps - got value of type '{type_name(item)}'")
        step: dict[str, Any] = item

        def fail(message: str, step: dict[str, Any] = step) -> BuiltinError:
            return BuiltinError(f"{fn}: live_update: {describe(step)}: {message}")

        if kind == INITIAL_SYNC:
            if seen_any:
                raise fail("initial_sync must appear at most once, at the start of the list")
            result.append(p.InitialSyncStep())
        elif kind == FALL_BACK_ON:
            if no_more_fallbacks:
                raise fail("fall_back_on steps must appear at the start of the list")
            result.append(p.FallBackOnStep(tuple(step["files"])))
        elif kind == SYNC:
            if no_more_runs:
                raise fail("restart_container is only valid as the last step")
            if no_more_syncs:
                raise fail("all sync steps must precede all run steps")
            no_more_fallbacks = True
            if not posixpath.isabs(step["remote_path"]):
                raise fail(f"sync destination '{step['remote_path']}' is not absolute")
            has_work = True
            result.append(p.SyncStep(step["local_path"], step["remote_path"]))
        elif kind == RUN:
            if no_more_runs:
                raise fail("restart_container is only valid as the last step")
            no_more_fallbacks = no_more_syncs = True
            has_work = True
            result.append(p.RunStep(tuple(step["cmd"]), step["shell"], tuple(step["trigger"]),
                                    step["echo_off"]))
        else:
            no_more_fallbacks = no_more_syncs = no_more_runs = True
            result.append(p.RestartContainerStep())
        seen_any = True
    if result and not has_work:
        raise BuiltinError(f"{fn}: live_update: must contain at least 1 sync or 1 run step "
                           "to run on live update")
    return tuple(result)


def _inside_one(path: str, roots: Sequence[str]) -> bool:
    for root in roots:
        root = root.rstrip("/") or "/"
        if path == root or path.startswith(root if root == "/" else root + "/"):
            return True
    return False


def image_tree_paths(ref: str, images: Mapping[str, p.ImageTarget | p.LiveUpdateOnly]
                     ) -> list[str]:
    """The paths watched for `ref` and every image it depends on (Tilt's VisitTree):
    docker_build contexts, custom_build deps."""
    paths: list[str] = []
    seen: set[str] = set()

    def visit(current: str) -> None:
        image = images.get(current)
        if image is None or current in seen:
            return
        seen.add(current)
        own = (image.context,) if isinstance(image, p.DockerBuild) else image.deps
        paths.extend(path for path in own if path not in paths)
        for dep in getattr(image, "image_deps", ()):
            visit(dep)

    visit(ref)
    return sorted(paths)


def check_watched_paths(fn: str, steps: Sequence[p.LiveUpdateStep],
                        watched: Sequence[str]) -> None:
    """Tilt's post-evaluation check: every sync source and fall_back_on file must be under
    a watched path, or no file event would ever reach it. Raises BuiltinError naming the
    step."""
    shown = ", ".join(watched)
    for step in steps:
        if isinstance(step, p.SyncStep) and not _inside_one(step.local_path, watched):
            raise BuiltinError(f"{fn}: live_update: sync step source '{step.local_path}' is "
                               f"not a child of any watched filepaths ({shown})")
        if isinstance(step, p.FallBackOnStep):
            for path in step.paths:
                if not _inside_one(path, watched):
                    raise BuiltinError(f"{fn}: live_update: fall_back_on paths '{path}' is "
                                       f"not a child of any watched filepaths ({shown})")
