"""The `Actions` the API offers in `devloop up`, carried out by the Engine and the Reloader."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from devloop.engine.engine import Engine
from devloop.engine.reloader import TILTFILE_RESOURCE, Reloader
from devloop.model import kinds as k
from devloop.server.actions import ActionRefused

SESSION_KIND = k.SESSION.name
SESSION_NAME = "tiltfile"


class EngineActions:
    """`set_args` is the session's way to change the args its next evaluation uses; the
    reload then runs like one caused by an edited Tiltfile. Without a reloader (`devloop ci`)
    args cannot change. The current args are kept in the session object's spec, so they can
    be read back like everything else."""

    def __init__(self, engine: Engine, reloader: Reloader | None,
                 set_args: Callable[[list[str]], None] | None, *,
                 initial_args: Sequence[str] = ()) -> None:
        self.engine = engine
        self.reloader = reloader
        self._set_args = set_args
        self._publish_args(list(initial_args))

    def names(self) -> list[str]:
        return self.engine.names()

    def trigger(self, resource: str) -> None:
        self.engine.trigger(resource)  # KeyError for an unknown name: the API answers 404

    def set_enabled(self, resource: str, enabled: bool) -> None:
        if resource not in self.engine.names():
            raise KeyError(resource)
        self.engine.set_enabled(resource, enabled)

    def set_args(self, args: list[str]) -> None:
        if self.reloader is None or self._set_args is None:
            raise ActionRefused("Tiltfile args can only change in `devloop up`")
        self._set_args(list(args))
        self._publish_args(args)
        self.engine.logs.append(TILTFILE_RESOURCE, "Tiltfile args changed: "
                                + (" ".join(args) or "(none)"), source="tiltfile")
        self.reloader.request_reload()

    def _publish_args(self, args: list[str]) -> None:
        current = self.engine.store.get(SESSION_KIND, SESSION_NAME)
        spec = dict(current.spec) if current else {}
        spec["args"] = list(args)
        self.engine.store.put(SESSION_KIND, SESSION_NAME, spec=spec)
