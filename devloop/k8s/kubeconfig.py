"""Kubeconfig files read the way kubectl reads them, without the `kubernetes` package.

The `kubernetes` package's loader pulls in its whole client, pydantic, oauthlib, requests and
dateutil (about 14 MiB of the daemon's memory and a tenth of a second of its start) to read
a YAML file. devloop needs one context out of it: where the API server is, how to trust it
and who to be. The rules are kubectl's:

- `KUBECONFIG` is a list of paths (`os.pathsep`-separated; missing files are skipped);
  without it, `~/.kube/config`. The files are merged: the first file to name a cluster,
  user or context wins, and `current-context` comes from the first file that sets it.
- Relative paths in a cluster or user (certificates, keys, token files, exec commands)
  resolve against the directory of the file that defined that cluster or user.
- Credentials: a token or token file, a client certificate and key (files or data), basic
  auth, or an exec credential plugin (client.authentication.k8s.io v1 and v1beta1), whose
  answer is kept until it expires. The legacy `auth-provider` plugins (gcp, azure, oidc)
  are refused with what to use instead, as kubectl 1.26 removed the gcp and azure ones.

Every error names the file and the context, cluster or user it is about.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from devloop.k8s.errors import KubeError

DEFAULT_PATH = os.path.join("~", ".kube", "config")
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
# A credential plugin that has not answered after this long is given up: the daemon has no
# terminal to show a login prompt on, so a plugin waiting for one would wait forever.
EXEC_TIMEOUT_SECONDS = 60.0
# A credential whose expiry is this close is fetched again before a request uses it, so a
# request never leaves with a token that expires on the way.
EXPIRY_MARGIN_SECONDS = 10.0
# A token file is read again after this long: tools that rotate it (projected service
# account tokens, cloud CLIs) replace the file, not the kubeconfig. client-go waits a minute.
TOKEN_FILE_SECONDS = 60.0
# The cluster extension whose content an exec plugin receives as `spec.cluster.config`.
EXEC_EXTENSION = "client.authentication.k8s.io/exec"


@dataclass
class _Entry:
    """A named cluster, user or context and the file it came from."""

    value: dict[str, Any]
    path: str


@dataclass
class Merged:
    """The merged view of the kubeconfig files (see the module docstring)."""

    paths: list[str]
    clusters: dict[str, _Entry] = field(default_factory=dict)
    users: dict[str, _Entry] = field(default_factory=dict)
    contexts: dict[str, _Entry] = field(default_factory=dict)
    current_context: str = ""
    current_context_path: str = ""

    @property
    def source(self) -> str:
        return os.pathsep.join(self.paths)


@dataclass(frozen=True)
class ExecCredential:
    """What an exec plugin answered: a token, or a client certificate and key (PEM)."""

    token: str = ""
    client_cert: bytes = b""
    client_key: bytes = b""
    expires: float | None = None  # time.time() when it expires; None: until refused

    def fresh(self, now: float) -> bool:
        return self.expires is None or now < self.expires - EXPIRY_MARGIN_SECONDS


@dataclass
class ExecPlugin:
    """A user's `exec` credential plugin; `credential()` runs it when needed (thread-safe)."""

    command: str
    args: list[str]
    env: dict[str, str]
    api_version: str
    where: str  # "kubeconfig F, user U" for errors
    install_hint: str = ""
    cluster_info: dict[str, Any] | None = None  # sent when the user asks provideClusterInfo
    _cached: ExecCredential | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def credential(self, *, refresh: bool = False) -> ExecCredential:
        """The cached credential while it is fresh; a new one when it expired, when none
        was fetched yet, or when `refresh` (the API server refused the cached one)."""
        with self._lock:
            cached = self._cached
            if cached is not None and not refresh and cached.fresh(time.time()):
                return cached
            self._cached = self._run()
            return self._cached

    def _exec_info(self) -> str:
        spec: dict[str, Any] = {"interactive": False}
        if self.cluster_info is not None:
            spec["cluster"] = self.cluster_info
        return json.dumps({"apiVersion": self.api_version, "kind": "ExecCredential",
                           "spec": spec})

    def _run(self) -> ExecCredential:
        env = {**os.environ, **self.env, "KUBERNETES_EXEC_INFO": self._exec_info()}
        argv = [self.command, *self.args]
        try:
            done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=EXEC_TIMEOUT_SECONDS,
                                  check=False)
        except FileNotFoundError:
            hint = f" ({self.install_hint.strip()})" if self.install_hint.strip() else ""
            raise KubeError(f"{self.where}: exec credential plugin {self.command!r} not "
                            f"found{hint}") from None
        except subprocess.TimeoutExpired:
            raise KubeError(f"{self.where}: exec credential plugin {self.command!r} did not "
                            f"answer in {EXEC_TIMEOUT_SECONDS:g} s", temporary=True) from None
        except OSError as e:
            raise KubeError(f"{self.where}: cannot run exec credential plugin "
                            f"{self.command!r}: {e}") from e
        if done.returncode != 0:
            stderr = done.stderr.decode(errors="replace").strip()
            raise KubeError(f"{self.where}: exec credential plugin {self.command!r} exited "
                            f"with {done.returncode}" + (f": {stderr}" if stderr else ""))
        return self._parse(done.stdout)

    def _parse(self, stdout: bytes) -> ExecCredential:
        bad = f"{self.where}: exec credential plugin {self.command!r} answered"
        try:
            data = json.loads(stdout)
        except ValueError as e:
            raise KubeError(f"{bad} something that is not JSON: {e}") from None
        if not isinstance(data, dict) or data.get("kind") != "ExecCredential":
            raise KubeError(f"{bad} no ExecCredential")
        if data.get("apiVersion") != self.api_version:
            raise KubeError(f"{bad} apiVersion {data.get('apiVersion')!r}, not "
                            f"{self.api_version!r}")
        status = data.get("status")
        if not isinstance(status, dict):
            raise KubeError(f"{bad} an ExecCredential without status")
        token = str(status.get("token") or "")
        cert = str(status.get("clientCertificateData") or "").encode()
        key = str(status.get("clientKeyData") or "").encode()
        if bool(cert) != bool(key):
            raise KubeError(f"{bad} a client certificate without its key, or a key "
                            "without its certificate")
        if not token and not cert:
            raise KubeError(f"{bad} neither a token nor a client certificate")
        expires = None
        stamp = status.get("expirationTimestamp")
        if stamp:
            try:
                expires = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
            except ValueError:
                raise KubeError(f"{bad} an expirationTimestamp that is not RFC 3339: "
                                f"{stamp!r}") from None
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=dt.UTC)
        return ExecCredential(token, cert, key,
                              None if expires is None else expires.timestamp())


@dataclass
class KubeConfig:
    """One context of the kubeconfig: the API server, how to trust it, who to be.

    `host` may be changed after loading (requests read it each time)."""

    source: str  # the kubeconfig file(s), for messages
    context: str
    cluster: str
    user: str
    namespace: str
    host: str
    ca_file: str = ""
    ca_data: bytes = b""  # PEM
    insecure: bool = False
    tls_server_name: str = ""
    proxy_url: str = ""
    token: str = ""
    token_file: str = ""
    client_cert_file: str = ""
    client_cert_data: bytes = b""  # PEM
    client_key_file: str = ""
    client_key_data: bytes = b""  # PEM
    username: str = ""
    password: str = ""
    exec_plugin: ExecPlugin | None = None
    _token_read: tuple[float, str] = (0.0, "")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def file_token(self) -> str:
        """The token file's token, read again every TOKEN_FILE_SECONDS."""
        with self._lock:
            at, token = self._token_read
            now = time.monotonic()
            if token and now - at < TOKEN_FILE_SECONDS:
                return token
            try:
                with open(self.token_file, encoding="utf-8") as f:
                    token = f.read().strip()
            except OSError as e:
                raise KubeError(f"kubeconfig {self.source}, user {self.user!r}: cannot read "
                                f"tokenFile: {e}") from e
            self._token_read = (now, token)
            return token


def _paths(kubeconfig: str | None) -> list[str]:
    given = kubeconfig if kubeconfig is not None else os.environ.get("KUBECONFIG", "")
    paths = [os.path.expanduser(p) for p in given.split(os.pathsep) if p]
    return paths or [os.path.expanduser(DEFAULT_PATH)]


def _read(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise KubeError(f"cannot read kubeconfig {path}: {e}") from e
    except yaml.YAMLError as e:
        raise KubeError(f"kubeconfig {path} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeError(f"kubeconfig {path} is not a mapping")
    return data


def merge(kubeconfig: str | None = None) -> Merged:
    """Read and merge the kubeconfig files: `kubeconfig` (a path or a path list) when
    given, else KUBECONFIG, else ~/.kube/config. Raises KubeError when none exists."""
    paths = _paths(kubeconfig)
    merged = Merged(paths)
    found = False
    for path in paths:
        data = _read(path)
        if data is None:
            continue
        found = True
        for key, into in (("clusters", merged.clusters), ("users", merged.users),
                          ("contexts", merged.contexts)):
            entries = data.get(key) or []
            if not isinstance(entries, list):
                raise KubeError(f"kubeconfig {path}: {key} is not a list")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise KubeError(f"kubeconfig {path}: an entry of {key} has no name")
                value = entry.get(key[:-1]) or {}
                if not isinstance(value, dict):
                    raise KubeError(f"kubeconfig {path}: {key[:-1]} {entry['name']!r} is "
                                    "not a mapping")
                into.setdefault(entry["name"], _Entry(value, path))
        current = data.get("current-context")
        if not merged.current_context and isinstance(current, str) and current:
            merged.current_context, merged.current_context_path = current, path
    if not found:
        if len(paths) == 1:
            raise KubeError(f"kubeconfig {paths[0]} does not exist")
        raise KubeError(f"no kubeconfig: none of {', '.join(paths)} exists")
    return merged


def list_contexts(kubeconfig: str | None = None) -> tuple[list[str], str]:
    """The context names of the merged kubeconfig, sorted, and the current one ('' when
    none is set)."""
    merged = merge(kubeconfig)
    return sorted(merged.contexts), merged.current_context


def _resolve(path: str, kubeconfig: str) -> str:
    if not path or os.path.isabs(path):
        return path
    return os.path.join(os.path.dirname(os.path.abspath(kubeconfig)), path)


def _data(value: Any, where: str, key: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=False)
    except (binascii.Error, ValueError) as e:
        raise KubeError(f"{where}: {key} is not base64: {e}") from None


def load(kubeconfig: str | None = None, context: str | None = None) -> KubeConfig:
    """The configuration of `context` (default: the current context). Raises KubeError."""
    merged = merge(kubeconfig)
    name = context or merged.current_context
    if not name:
        raise KubeError(f"kubeconfig {merged.source} sets no current-context; name a "
                        "context (--context)")
    entry = merged.contexts.get(name)
    if entry is None:
        raise KubeError(f"kubeconfig {merged.source} has no context {name!r}"
                        + (f" (it has {', '.join(sorted(merged.contexts))})"
                           if merged.contexts else ""))
    where = f"kubeconfig {entry.path}, context {name!r}"
    cluster_name = str(entry.value.get("cluster") or "")
    user_name = str(entry.value.get("user") or "")
    cluster = merged.clusters.get(cluster_name)
    if cluster is None:
        raise KubeError(f"{where}: no cluster {cluster_name!r} in {merged.source}")
    config = KubeConfig(source=merged.source, context=name, cluster=cluster_name,
                        user=user_name, namespace=str(entry.value.get("namespace") or
                                                      "default"), host="")
    _load_cluster(config, cluster, f"kubeconfig {cluster.path}, cluster {cluster_name!r}")
    if user_name:
        user = merged.users.get(user_name)
        if user is None:
            raise KubeError(f"{where}: no user {user_name!r} in {merged.source}")
        _load_user(config, user, f"kubeconfig {user.path}, user {user_name!r}", name,
                   _cluster_info(config, cluster.value))
    return config


def _load_cluster(config: KubeConfig, entry: _Entry, where: str) -> None:
    c = entry.value
    server = str(c.get("server") or "").rstrip("/")
    if not server:
        raise KubeError(f"{where}: no server")
    if not server.startswith(("https://", "http://")):
        raise KubeError(f"{where}: server {server!r} is not an http(s) URL")
    config.host = server
    if c.get("certificate-authority-data"):
        config.ca_data = _data(c["certificate-authority-data"], where,
                               "certificate-authority-data")
    elif c.get("certificate-authority"):
        config.ca_file = _resolve(str(c["certificate-authority"]), entry.path)
        if not os.path.exists(config.ca_file):
            raise KubeError(f"{where}: certificate-authority {config.ca_file} does not exist")
    config.insecure = bool(c.get("insecure-skip-tls-verify"))
    config.tls_server_name = str(c.get("tls-server-name") or "")
    proxy = str(c.get("proxy-url") or "")
    if proxy and not proxy.startswith("http://"):
        raise KubeError(f"{where}: proxy-url {proxy!r}: only http:// proxies are supported")
    config.proxy_url = proxy


def _cluster_info(config: KubeConfig, cluster: dict[str, Any]) -> dict[str, Any]:
    """The cluster as an exec plugin sees it with provideClusterInfo (the Cluster type of
    client.authentication.k8s.io)."""
    info: dict[str, Any] = {"server": config.host}
    ca = config.ca_data
    if not ca and config.ca_file:
        try:
            with open(config.ca_file, "rb") as f:
                ca = f.read()
        except OSError:
            ca = b""
    if ca:
        info["certificate-authority-data"] = base64.b64encode(ca).decode()
    for key, value in (("tls-server-name", config.tls_server_name),
                       ("insecure-skip-tls-verify", config.insecure),
                       ("proxy-url", config.proxy_url)):
        if value:
            info[key] = value
    for extension in cluster.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == EXEC_EXTENSION:
            info["config"] = extension.get("extension")
    return info


def _load_user(config: KubeConfig, entry: _Entry, where: str, context: str,
               cluster_info: dict[str, Any]) -> None:
    u = entry.value
    if u.get("auth-provider"):
        provider = (u["auth-provider"] or {}).get("name") or "?"
        raise KubeError(f"{where} (context {context!r}) uses the auth-provider {provider!r}, "
                        "which devloop does not support (kubectl 1.26 removed the gcp and "
                        "azure ones): use an exec credential plugin instead, e.g. "
                        "gke-gcloud-auth-plugin, kubelogin or an OIDC plugin")
    config.token = str(u.get("token") or "")
    if u.get("tokenFile") and not config.token:
        config.token_file = _resolve(str(u["tokenFile"]), entry.path)
    if u.get("client-certificate-data"):
        config.client_cert_data = _data(u["client-certificate-data"], where,
                                        "client-certificate-data")
    elif u.get("client-certificate"):
        config.client_cert_file = _resolve(str(u["client-certificate"]), entry.path)
    if u.get("client-key-data"):
        config.client_key_data = _data(u["client-key-data"], where, "client-key-data")
    elif u.get("client-key"):
        config.client_key_file = _resolve(str(u["client-key"]), entry.path)
    has_cert = bool(config.client_cert_data or config.client_cert_file)
    has_key = bool(config.client_key_data or config.client_key_file)
    if has_cert != has_key:
        raise KubeError(f"{where}: a client certificate needs its key, and a key its "
                        "certificate")
    for path in (config.client_cert_file, config.client_key_file):
        if path and not os.path.exists(path):
            raise KubeError(f"{where}: {path} does not exist")
    config.username = str(u.get("username") or "")
    config.password = str(u.get("password") or "")
    if u.get("exec"):
        config.exec_plugin = _exec_plugin(u["exec"], entry.path, where, cluster_info)


def _exec_plugin(spec: Any, path: str, where: str,
                 cluster_info: dict[str, Any]) -> ExecPlugin:
    if not isinstance(spec, dict) or not spec.get("command"):
        raise KubeError(f"{where}: exec has no command")
    api_version = str(spec.get("apiVersion") or "")
    if api_version not in EXEC_API_VERSIONS:
        raise KubeError(f"{where}: exec apiVersion {api_version!r} is not supported (use "
                        f"{' or '.join(EXEC_API_VERSIONS)})")
    if spec.get("interactiveMode") == "Always":
        raise KubeError(f"{where}: the exec credential plugin needs a terminal "
                        "(interactiveMode: Always), which devloop's daemon does not have")
    command = str(spec["command"])
    # kubectl: a command with a path separator is relative to the kubeconfig's directory;
    # a bare name is looked up on PATH.
    if os.sep in command:
        command = _resolve(command, path)
    env = {}
    for item in spec.get("env") or []:
        if not isinstance(item, dict) or "name" not in item:
            raise KubeError(f"{where}: an exec env entry has no name")
        env[str(item["name"])] = str(item.get("value") or "")
    return ExecPlugin(command=command, args=[str(a) for a in spec.get("args") or []],
                      env=env, api_version=api_version, where=where,
                      install_hint=str(spec.get("installHint") or ""),
                      cluster_info=cluster_info if spec.get("provideClusterInfo") else None)
