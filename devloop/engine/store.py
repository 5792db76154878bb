"""The one store of daemon state: typed objects with spec and status, and a change feed.

Every object kind (resource, build, pod, portforward, alert, session...) is stored the same
way, so the API, the terminal UI and `devloop get` read all state alike. Reconcilers write
here; readers take snapshots or subscribe to changes. Subscriber queues are unbounded:
a slow reader costs memory, never a stalled engine.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StoredObject:
    kind: str
    name: str
    spec: dict[str, Any]
    status: dict[str, Any]
    version: int
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "metadata": {"name": self.name,
                                                "resourceVersion": str(self.version),
                                                "updatedAt": self.updated_at},
                "spec": self.spec, "status": self.status}


@dataclass(frozen=True)
class Change:
    type: str  # "ADDED", "MODIFIED", "DELETED"
    object: StoredObject


@dataclass
class Store:
    _objects: dict[tuple[str, str], StoredObject] = field(default_factory=dict)
    _version: int = 0
    _subscribers: list[asyncio.Queue[Change]] = field(default_factory=list)

    @property
    def version(self) -> int:
        return self._version

    def get(self, kind: str, name: str) -> StoredObject | None:
        return self._objects.get((kind, name))

    def list(self, kind: str) -> builtins.list[StoredObject]:
        return [obj for (k, _), obj in self._objects.items() if k == kind]

    def kinds(self) -> builtins.list[str]:
        return sorted({kind for kind, _ in self._objects})

    def __iter__(self) -> Iterator[StoredObject]:
        return iter(list(self._objects.values()))

    def put(self, kind: str, name: str, *, spec: dict[str, Any] | None = None,
            status: dict[str, Any] | None = None) -> StoredObject:
        """Create or replace; a None spec/status keeps the current one."""
        current = self._objects.get((kind, name))
        new_spec = copy.deepcopy(spec) if spec is not None else (current.spec if current else {})
        new_status = copy.deepcopy(status) if status is not None else (
            current.status if current else {})
        if current and current.spec == new_spec and current.status == new_status:
            return current
        self._version += 1
        obj = StoredObject(kind, name, new_spec, new_status, self._version, time.time())
        self._objects[(kind, name)] = obj
        self._publish(Change("MODIFIED" if current else "ADDED", obj))
        return obj

    def update_status(self, kind: str, name: str, **fields: Any) -> StoredObject:
        current = self._objects.get((kind, name))
        status = dict(current.status) if current else {}
        status.update(fields)
        return self.put(kind, name, status=status)

    def delete(self, kind: str, name: str) -> None:
        current = self._objects.pop((kind, name), None)
        if current is not None:
            self._version += 1
            self._publish(Change("DELETED", current))

    def subscribe(self) -> asyncio.Queue[Change]:
        queue: asyncio.Queue[Change] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def _publish(self, change: Change) -> None:
        for queue in self._subscribers:
            queue.put_nowait(change)
