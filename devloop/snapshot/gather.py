"""What a snapshot holds: every object the API serves and every kept log line, scrubbed."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from devloop.engine.logs import LogFilter, LogLine, LogStore
from devloop.engine.store import Store
from devloop.model import plan as p
from devloop.snapshot.secrets import Scrubber, SecretValue, secrets_in_manifest, secrets_in_yaml

FORMAT_VERSION = 1


def session_secrets(store: Store, plan: p.Plan | None) -> list[SecretValue]:
    """The Secrets the Tiltfile declares (the Plan) and those applied (each resource's applied
    YAML, which the API serves in the resource's status)."""
    found: list[SecretValue] = []
    if plan is not None:
        for resource in plan.resources:
            for obj in resource.objects:
                if obj.kind == "Secret":
                    found += secrets_in_manifest(obj.manifest())
    for stored in store.list("resource"):
        applied = (stored.status.get("details") or {}).get("appliedYaml")
        if isinstance(applied, str):
            found += secrets_in_yaml(applied)
    return found


@dataclass(frozen=True)
class Taken:
    """The session at one moment, read on the loop; scrubbing happens later, in a thread."""

    objects: list[dict[str, Any]]
    lines: list[LogLine]
    dropped: dict[str, int]
    secrets: list[SecretValue]
    scrub_disabled: bool
    tiltfile: str
    time: float


# Stored chunks read between pauses for the rest of the loop: one chunk (some thousand
# lines) takes a few ms.
CHUNKS_PER_PAUSE = 1


async def read_lines(logs: LogStore) -> list[LogLine]:
    """Every kept line (by resource, newest chunk first: `snapshot_data` puts them in order),
    read a chunk at a time so that a full log budget (a few hundred thousand lines) never
    holds the daemon's loop for long."""
    lines: list[LogLine] = []
    for name in logs.resources():
        for count, batch in enumerate(logs.scan(name, LogFilter()), start=1):
            lines += batch
            if count % CHUNKS_PER_PAUSE == 0:
                await asyncio.sleep(0)
    return lines


def take(store: Store, logs: LogStore, plan: p.Plan | None, *, now: float | None = None,
         lines: list[LogLine] | None = None) -> Taken:
    """With secret_settings(disable_scrub=True) nothing will be scrubbed, as Tilt then leaves
    the values in its logs too. `lines` (read with `read_lines`) default to every kept line."""
    disabled = plan is not None and plan.settings.secrets.disable_scrub
    return Taken(objects=[obj.to_json() for obj in store],
                 lines=logs.lines() if lines is None else lines,
                 dropped={name: logs.dropped(name) for name in logs.resources()
                          if logs.dropped(name)},
                 secrets=[] if disabled else session_secrets(store, plan),
                 scrub_disabled=disabled, tiltfile=plan.tiltfile if plan is not None else "",
                 time=time.time() if now is None else now)


def snapshot_data(taken: Taken) -> dict[str, Any]:
    """The snapshot's data, every string scrubbed."""
    scrubber = Scrubber(taken.secrets)
    lines = [{"seq": line.seq, "time": line.time, "resource": line.resource,
              "source": line.source, "prefix": line.prefix, "text": scrubber.text(line.text)}
             for line in sorted(taken.lines, key=lambda line: line.seq)]
    return {"version": FORMAT_VERSION, "createdAt": taken.time, "tiltfile": taken.tiltfile,
            "objects": [scrubber.data(obj) for obj in taken.objects], "logs": lines,
            "dropped": taken.dropped,
            "scrub": {"disabled": taken.scrub_disabled, "values": len(scrubber.forms)}}
