"""Process restart for Kubernetes live updates: the wrapper an image's command runs under.

`restart_container()` in a Kubernetes live_update cannot restart a container through the
exec API, and Tilt's restart_process extension copies a helper binary from a public image
(no use offline). devloop instead appends to the image's Dockerfile an ENTRYPOINT that runs
the original command under a small POSIX sh loop: it starts the command as a child, and
restarts it whenever the content of a marker file changes. The live update writes a fresh
value into the marker (`touch_command`) after its syncs and runs. The image only needs
`/bin/sh`; nothing is copied into it, so any builder (BuildKit or not) can build it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import Sequence

from devloop.model import dockerfile
from devloop.model import plan as p

# The same default as the restart_process extension, so Tiltfiles whose own run steps
# write it keep working; under /tmp so a non-root container user can write it.
MARKER = "/tmp/.restart-proc"
STAGE = "devloop-restart"

# $1 marker, $2 exit policy (restart: the container exits with the command, so Kubernetes
# restarts it; continue: wait for the next live update), then the command.
# Stopping the command stops what it started too (`sh -c "python app.py"` may not exec, and
# an orphaned server would keep the port): its descendants are read from /proc first.
SCRIPT = r"""marker="$1"; policy="$2"; shift 2
mark() { cat "$marker" 2>/dev/null; }
nap() { sleep 0.2 2>/dev/null || sleep 1; }
tree() {
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do echo "$c"; tree "$c"; done
}
alive() {
  for p in $pids; do
    s=$(cat /proc/"$p"/stat 2>/dev/null) || continue
    case "$s" in *") Z "*) ;; *) return 0 ;; esac
  done
  return 1
}
stop() {
  pids="$child $(tree "$child")"
  kill -TERM $pids 2>/dev/null
  i=0
  while alive && [ "$i" -lt 50 ]; do
    i=$((i+1)); sleep 0.1 2>/dev/null || sleep 1
  done
  kill -KILL $pids 2>/dev/null
  wait "$child" 2>/dev/null
}
trap 'stop; exit 143' TERM INT
seen=$(mark)
"$@" &
child=$!
running=1
while :; do
  now=$(mark)
  if [ "$now" != "$seen" ]; then
    seen=$now
    if [ "$running" = 1 ]; then stop; fi
    "$@" &
    child=$!
    running=1
  elif [ "$running" = 1 ] && ! kill -0 "$child" 2>/dev/null; then
    wait "$child"
    status=$?
    running=0
    if [ "$policy" != continue ]; then exit "$status"; fi
  fi
  nap
done
"""


class WrapError(Exception):
    """The image's command cannot be told, so it cannot be wrapped."""


def restarts(image: p.ImageTarget) -> bool:
    """Whether the image's live_update ends by restarting the container's process."""
    return any(isinstance(step, p.RestartContainerStep) for step in image.live_update)


def touch_command() -> tuple[str, ...]:
    """What the live update runs in the container to make the wrapper restart the command:
    a new value each time (the time and the exec's own pid), not just a new mtime."""
    return ("sh", "-c", f'echo "$(date) $$" > {MARKER}')


def entrypoint(command: Sequence[str], policy: str = "restart") -> list[str]:
    """The wrapped ENTRYPOINT for `command`."""
    return ["/bin/sh", "-c", SCRIPT, STAGE, MARKER, policy, *command]


def _form(args: str) -> list[str]:
    """An ENTRYPOINT/CMD value: exec form (JSON array) or shell form."""
    text = args.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", text]


def _stages(text: str) -> list[tuple[str, str, list[dockerfile.Instruction]]]:
    """(base, name, instructions) per stage of a Dockerfile."""
    stages: list[tuple[str, str, list[dockerfile.Instruction]]] = []
    for ins in dockerfile.parse(text).instructions:
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            base = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else ""
            stages.append((base, name, []))
        elif stages:
            stages[-1][2].append(ins)
    return stages


def dockerfile_command(text: str, target: str = ""
                       ) -> tuple[list[str] | None, list[str] | None, str]:
    """(entrypoint, cmd, external base) of the built stage, following stages it builds
    FROM; None where the Dockerfile leaves it to the external base image named last."""
    stages = _stages(text)
    if not stages:
        return None, None, ""
    by_name = {name.lower(): index for index, (_, name, _) in enumerate(stages) if name}
    index = by_name.get(target.lower(), len(stages) - 1) if target else len(stages) - 1
    chain: list[int] = []
    while index not in chain:
        chain.append(index)
        base = stages[index][0].lower()
        if base not in by_name:
            break
        index = by_name[base]
    entry: list[str] | None = None
    cmd: list[str] | None = None
    # Oldest stage first: a later ENTRYPOINT resets the CMD it inherits (Docker's rule).
    for index in reversed(chain):
        own_cmd = False
        for ins in stages[index][2]:
            if ins.keyword == "CMD":
                cmd, own_cmd = _form(ins.args), True
            elif ins.keyword == "ENTRYPOINT":
                entry = _form(ins.args)
                if not own_cmd:
                    cmd = []
    external = stages[chain[-1]][0]
    return entry, cmd, "" if external.lower() in by_name else external


def inspect_command(ref: str) -> tuple[list[str], list[str]]:
    """ENTRYPOINT and CMD of a local image, from its config (`docker image inspect`)."""
    try:
        out = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config}}",
                              ref], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WrapError(f"cannot inspect base image {ref}: {exc}") from None
    if out.returncode != 0:
        raise WrapError(f"cannot inspect base image {ref}: "
                        f"{(out.stderr or out.stdout).strip()}")
    config = json.loads(out.stdout or "{}") or {}
    return list(config.get("Entrypoint") or []), list(config.get("Cmd") or [])


def _text(image: p.DockerBuild) -> str:
    if image.dockerfile_contents is not None:
        return image.dockerfile_contents
    with open(image.dockerfile, encoding="utf-8") as handle:
        return handle.read()


def command_of(image: p.DockerBuild) -> list[str]:
    """The command the image's container runs: docker_build's `entrypoint` when given
    (Tilt's override of the container's command), else the Dockerfile's ENTRYPOINT and
    CMD, completed from the base image's config."""
    if image.entrypoint:
        return list(image.entrypoint)
    try:
        text = _text(image)
    except OSError as exc:
        raise WrapError(f"cannot read {image.dockerfile}: {exc.strerror}") from None
    entry, cmd, base = dockerfile_command(text, image.target)
    if (entry is None or cmd is None) and base and base.lower() != "scratch":
        base_entry, base_cmd = inspect_command(base)
        entry = base_entry if entry is None else entry
        cmd = base_cmd if cmd is None else cmd
    command = (entry or []) + (cmd or [])
    if not command:
        raise WrapError("restart_container(): the image has no ENTRYPOINT or CMD to restart; "
                        "give the Dockerfile one or docker_build an `entrypoint`")
    return command


def wrap(image: p.DockerBuild) -> p.DockerBuild:
    """`image` built with its command under the restart wrapper (a final stage appended to
    its Dockerfile); unchanged when its live_update does not restart. Raises WrapError."""
    if not restarts(image):
        return image
    command = command_of(image)
    text = _text(image).rstrip("\n") + "\n"
    target = image.target
    if target:
        # The built stage is not the last one: build a new stage on top of it instead.
        text += f"FROM {target} AS {STAGE}\n"
        target = STAGE
    text += f"ENTRYPOINT {json.dumps(entrypoint(command))}\nCMD []\n"
    return dataclasses.replace(image, dockerfile_contents=text, target=target,
                               dockerfile=image.dockerfile or os.path.join(image.context,
                                                                          "Dockerfile"))
