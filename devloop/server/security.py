"""Who may talk to the daemon: the per-start token, the daemon file, and Host/Origin checks.

Why each check exists:
- The token guards every mutation: a page on another site cannot learn it (the same-origin
  policy keeps it from reading our pages), and a custom header forces a CORS preflight that we
  never answer, so a foreign page cannot even send it.
- The Host check defends against DNS rebinding: a hostile name that re-resolves to 127.0.0.1
  would make its page same-origin with us, but its requests still carry the hostile name in
  `Host`, which we refuse.
- The Origin check refuses anything a browser sends on behalf of another origin.
- No page of ours may be framed by another site, so its buttons cannot be clicked by trickery.
CLI clients on the same machine read the token from the daemon file, readable only by its user.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

TOKEN_HEADER = "X-Devloop-Token"
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _is_ip_literal(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass
class Guard:
    """The checks, set up once the real port is known (port 0 means "any free port")."""

    bind_host: str
    token: str = field(default_factory=new_token)
    port: int = 0

    def allowed_hosts(self) -> set[str]:
        names = {_host_port(name, self.port) for name in LOOPBACK_NAMES}
        if self.bind_host not in WILDCARD_HOSTS:
            names.add(_host_port(self.bind_host, self.port))
        return names

    def host_allowed(self, host: str | None) -> bool:
        if not host:
            return False
        host = host.lower()
        if host in self.allowed_hosts():
            return True
        # Bound to every interface, the machine is reached by any of its addresses; rebinding
        # needs a DNS name, so IP literals on our port stay safe to accept.
        if self.bind_host in WILDCARD_HOSTS:
            name, _, port = host.rpartition(":")
            return port == str(self.port) and _is_ip_literal(name)
        return False

    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None:
            return True  # not sent by a browser on behalf of another page
        scheme, _, rest = origin.lower().partition("://")
        return scheme == "http" and self.host_allowed(rest)

    def token_valid(self, presented: str | None) -> bool:
        # compare_digest takes str only when ASCII: compare bytes, so any header is refused
        # rather than raising.
        return presented is not None and secrets.compare_digest(
            presented.encode("utf-8", "surrogateescape"), self.token.encode())

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def guard(request: web.Request, handler: Callable[
                [web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
            if not self.host_allowed(request.headers.get("Host")):
                return _refuse(421, f"Host {request.headers.get('Host')!r} is not this "
                               "daemon's address")
            if not self.origin_allowed(request.headers.get("Origin")):
                return _refuse(403, f"Origin {request.headers.get('Origin')!r} may not use "
                               "this daemon")
            if request.method in MUTATING_METHODS and not self.token_valid(
                    request.headers.get(TOKEN_HEADER)):
                return _refuse(403, f"missing or wrong {TOKEN_HEADER} header (the token is "
                               "in the dashboard page and in the daemon file)")
            return await handler(request)

        return guard


# Our pages may not be framed by another site (which could trick clicks on trigger/disable),
# and browsers must not guess a type other than the one we send.
SECURITY_HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'",
                    "X-Content-Type-Options": "nosniff"}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, streams and refusals included (aiohttp's on_response_prepare)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
