"""HTTP(S) to the API server on urllib3, set up from one kubeconfig context.

This is the part of the `kubernetes` client devloop used: a connection pool with the
cluster's TLS settings and the user's credentials. The TLS context trusts the cluster's CA
(or the system's when it names none), checks the server's name against `tls-server-name`
when set, presents the client certificate, and is shared with the websockets (exec,
port-forward), which open connections of their own. Credentials from an exec plugin are
fetched when they are missing or expired, and once more when the API server refuses them.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import urllib3

from devloop.k8s.errors import KubeError
from devloop.k8s.kubeconfig import ExecCredential, KubeConfig

# Connect and read timeouts of ordinary requests. A read taking over a minute means the
# API server is in trouble; the caller sees a temporary error and retries.
REQUEST_TIMEOUT = (10.0, 60.0)
# Connections kept per host: every watch, log follower and request thread holds one while
# it runs, and a pool that is too small closes the extras after use instead of keeping them.
# Five per core, as the `kubernetes` client sized it; past that, connections are made and
# dropped (block=False) rather than making a thread wait for one.
POOL_MAXSIZE = (os.cpu_count() or 1) * 5
USER_AGENT = "devloop"

# (connect, read) seconds, one total, or None for no limit.
Timeout = tuple[float | None, float | None] | float | None


@dataclass(frozen=True)
class Proxy:
    """A kubeconfig's proxy-url, read once for requests and websockets alike."""

    url: str  # without the credentials
    host: str
    port: int
    auth: tuple[str, str] | None  # (user, password) for Proxy-Authorization: Basic

    @classmethod
    def parse(cls, url: str) -> Proxy:
        found = urlsplit(url)
        auth = None if found.username is None else (found.username, found.password or "")
        return cls(found._replace(netloc=found.netloc.rpartition("@")[2]).geturl(),
                   found.hostname or "", found.port or 80, auth)


@dataclass(frozen=True)
class Prepared:
    """What one request (or websocket) goes out with: its headers and TLS context."""

    headers: dict[str, str]
    ssl_context: ssl.SSLContext | None
    pool: urllib3.PoolManager


def encode_query(query: Iterable[tuple[str, Any]]) -> str:
    """`key=value&...`, a list value repeating its key (exec's `command`), booleans in
    lower case, everything percent-encoded."""
    parts: list[str] = []
    for key, value in query:
        for item in value if isinstance(value, list | tuple) else [value]:
            text = str(item).lower() if isinstance(item, bool) else str(item)
            parts.append(f"{quote(str(key), safe='')}={quote(text, safe='')}")
    return "&".join(parts)


def _timeout(timeout: Timeout) -> urllib3.Timeout:
    if timeout is None:
        return urllib3.Timeout(connect=None, read=None)
    if isinstance(timeout, tuple):
        return urllib3.Timeout(connect=timeout[0], read=timeout[1])
    return urllib3.Timeout(total=float(timeout))


def _write_private(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


class Transport:
    """Requests to the API server of `config` (thread-safe)."""

    def __init__(self, config: KubeConfig, *, maxsize: int = POOL_MAXSIZE) -> None:
        self.config = config
        self._maxsize = maxsize
        self._lock = threading.Lock()
        # The TLS context and pool for the client certificate in use (an exec plugin may
        # hand out a new one): its PEM, the context, the pool.
        self._current: tuple[bytes, ssl.SSLContext | None, urllib3.PoolManager] | None = None

    @property
    def where(self) -> str:
        c = self.config
        return f"kubeconfig {c.source}, context {c.context!r}"

    # ------------------------------------------------------------------ credentials

    def prepare(self, *, refresh: bool = False) -> Prepared:
        """Headers and TLS for the next request; `refresh` asks the exec plugin for new
        credentials (the API server refused the ones it gave)."""
        c = self.config
        credential: ExecCredential | None = None
        if c.exec_plugin is not None:
            credential = c.exec_plugin.credential(refresh=refresh)
        headers: dict[str, str] = {"User-Agent": USER_AGENT}
        token = c.token or (c.file_token() if c.token_file else "")
        if not token and credential is not None:
            token = credential.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif c.username or c.password:
            basic = base64.b64encode(f"{c.username}:{c.password}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        cert = credential.client_cert if credential is not None else b""
        key = credential.client_key if credential is not None else b""
        with self._lock:
            if self._current is None or self._current[0] != cert:
                if self._current is not None:
                    self._current[2].clear()
                context = self._ssl_context(cert, key)
                self._current = (cert, context, self._pool_manager(context))
            _, context, pool = self._current
        return Prepared(headers, context, pool)

    @property
    def refreshable(self) -> bool:
        """Whether a refused credential can be replaced (it comes from an exec plugin)."""
        return self.config.exec_plugin is not None

    def _ssl_context(self, exec_cert: bytes, exec_key: bytes) -> ssl.SSLContext | None:
        c = self.config
        if not c.host.startswith("https://"):
            return None
        where = f"kubeconfig {c.source}, cluster {c.cluster!r}"
        try:
            if c.ca_data:
                # PEM as text; anything else is taken for DER.
                cadata: str | bytes = (c.ca_data.decode("ascii", errors="replace")
                                       if b"-----BEGIN" in c.ca_data else c.ca_data)
                context = ssl.create_default_context(cadata=cadata)
            else:
                context = ssl.create_default_context(cafile=c.ca_file or None)
        except (ssl.SSLError, OSError, ValueError) as e:
            raise KubeError(f"{where}: cannot use the certificate authority: {e}") from e
        if c.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        cert, key = exec_cert, exec_key
        cert_file, key_file = c.client_cert_file, c.client_key_file
        if not cert:
            cert, key = c.client_cert_data, c.client_key_data
        if cert or key or cert_file:
            where = f"kubeconfig {c.source}, user {c.user!r}"
            try:
                # ssl loads a certificate and key only from files: data goes to files only
                # this process can read, removed as soon as they are loaded.
                with tempfile.TemporaryDirectory(prefix="devloop-kube-") as private:
                    if cert:
                        cert_file = _write_private(private, "client.crt", cert)
                    if key:
                        key_file = _write_private(private, "client.key", key)
                    context.load_cert_chain(cert_file, key_file or None)
            except (ssl.SSLError, OSError) as e:
                raise KubeError(f"{where}: cannot use the client certificate: {e}") from e
        return context

    def _pool_manager(self, context: ssl.SSLContext | None) -> urllib3.PoolManager:
        c = self.config
        kwargs: dict[str, Any] = {"num_pools": 4, "maxsize": self._maxsize, "block": False}
        if context is not None:
            kwargs["ssl_context"] = context
            kwargs["cert_reqs"] = ssl.CERT_NONE if c.insecure else ssl.CERT_REQUIRED
            if c.tls_server_name:
                kwargs["server_hostname"] = c.tls_server_name
        if c.proxy_url:
            proxy = Proxy.parse(c.proxy_url)
            headers = None if proxy.auth is None else \
                urllib3.make_headers(proxy_basic_auth=":".join(proxy.auth))
            return urllib3.ProxyManager(proxy.url, proxy_headers=headers, **kwargs)
        return urllib3.PoolManager(**kwargs)

    # ------------------------------------------------------------------ requests

    def url(self, path: str, query: Iterable[tuple[str, Any]] = ()) -> str:
        """The URL of `path` on the API server (the server URL may carry a path prefix)."""
        encoded = encode_query(query)
        return f"{self.config.host}{path}" + (f"?{encoded}" if encoded else "")

    def request(self, method: str, path: str, *, query: Iterable[tuple[str, Any]] = (),
                body: Any = None, headers: dict[str, str] | None = None,
                timeout: Timeout = REQUEST_TIMEOUT) -> urllib3.BaseHTTPResponse:
        """Send one request and return the response with its body unread (the caller reads
        it, streams it, and releases it). Raises urllib3's errors and OSError when the
        server cannot be reached, KubeError when the credentials cannot be had."""
        url = self.url(path, query)
        sent = dict(headers or {})
        data: bytes | str | None = None
        if body is not None:
            data = body if isinstance(body, bytes | str) else json.dumps(body)
            sent.setdefault("Content-Type", "application/json")
        refresh = False
        while True:
            prepared = self.prepare(refresh=refresh)
            resp = prepared.pool.request(method, url, body=data,
                                         headers={**sent, **prepared.headers},
                                         timeout=_timeout(timeout), preload_content=False,
                                         redirect=False)
            if resp.status != 401 or refresh or not self.refreshable:
                return resp
            # Refused: the plugin's credential was revoked or expired early. Ask it again.
            try:
                resp.drain_conn()
            finally:
                resp.release_conn()
            refresh = True

    def close(self) -> None:
        with self._lock:
            current, self._current = self._current, None
        if current is not None:
            current[2].clear()
