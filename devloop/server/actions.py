"""User actions over HTTP: trigger, enable/disable, Tiltfile args (POST only, token-checked).

The server knows nothing of the engine: it calls an `Actions` implementation, which the
composition root provides (`engine_actions.EngineActions` for `devloop up`, a fake in tests).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable
from typing import Any, Protocol

from aiohttp import web


class ActionRefused(Exception):
    """The action exists but cannot run in this daemon (e.g. args in `devloop ci`): 409."""


class Actions(Protocol):
    """What the API may ask of the engine. Unknown resources raise KeyError (404). A method
    may also return an awaitable, which the server awaits before answering."""

    def trigger(self, resource: str) -> Awaitable[None] | None: ...

    def set_enabled(self, resource: str, enabled: bool) -> Awaitable[None] | None: ...

    def set_args(self, args: list[str]) -> Awaitable[None] | None: ...

    def names(self) -> list[str]: ...


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"body is not JSON: {exc}"}),
                                 content_type="application/json") from exc
    except RecursionError:
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is nested too deeply"}),
                                 content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}),
                                 content_type="application/json")
    return body


def _resources(body: dict[str, Any]) -> list[str]:
    """`{"resource": name}`, or `{"resources": [names]}` to act on several at once."""
    names = body.get("resources", [body["resource"]] if "resource" in body else None)
    if not isinstance(names, list) or not names or not all(
            isinstance(name, str) and name for name in names):
        raise web.HTTPBadRequest(text=json.dumps({
            "error": 'give the resource: {"resource": "<name>"}'}),
            content_type="application/json")
    return names


def _is_text(value: str) -> bool:
    """What can be printed, logged and passed to a process: encodable UTF-8 without NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\0" not in value


async def _call(result: object) -> None:
    if inspect.isawaitable(result):
        await result


class ActionsApi:
    def __init__(self, actions: Actions) -> None:
        self.actions = actions

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/v1/actions/trigger", self.trigger),
                web.post("/api/v1/actions/enable", self.enable),
                web.post("/api/v1/actions/disable", self.disable),
                web.post("/api/v1/actions/args", self.args)]

    def _unknown(self, names: list[str]) -> web.Response | None:
        listed = getattr(self.actions, "names", None)
        if listed is None:  # an Actions without names() reports unknown ones by KeyError
            return None
        known = set(listed())
        missing = [name for name in names if name not in known]
        if missing:
            return _error(404, f"no resource {missing[0]!r}; resources: "
                          + ", ".join(sorted(known)))
        return None

    async def _each(self, names: list[str], act: Any, action: str) -> web.Response:
        refused = self._unknown(names)
        if refused is not None:
            return refused
        try:
            for name in names:
                await _call(act(name))
        except KeyError as exc:
            return _error(404, f"no resource {exc.args[0]!r}")
        except ActionRefused as exc:
            return _error(409, str(exc))
        return web.json_response({"action": action, "resources": names})

    async def trigger(self, request: web.Request) -> web.Response:
        return await self._each(_resources(await _body(request)), self.actions.trigger,
                                "trigger")

    async def enable(self, request: web.Request) -> web.Response:
        return await self._each(_resources(await _body(request)),
                                lambda name: self.actions.set_enabled(name, True), "enable")

    async def disable(self, request: web.Request) -> web.Response:
        return await self._each(_resources(await _body(request)),
                                lambda name: self.actions.set_enabled(name, False), "disable")

    async def args(self, request: web.Request) -> web.Response:
        args = (await _body(request)).get("args")
        if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
            return _error(400, 'give the Tiltfile args as a list of strings: {"args": [...]}')
        invalid = next((arg for arg in args if not _is_text(arg)), None)
        if invalid is not None:
            return _error(400, f"Tiltfile arg {invalid!r} is not valid Unicode text (a lone "
                          "surrogate or a NUL)")
        try:
            await _call(self.actions.set_args(list(args)))
        except ActionRefused as exc:
            return _error(409, str(exc))
        return web.json_response({"action": "args", "args": args})
