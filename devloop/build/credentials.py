"""Registry credentials, found the way `docker push` finds them, and never shown.

The docker CLI reads `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`) and,
for a registry host, asks in this order (docker/cli `configfile.GetCredentialsStore`):

1. `credHelpers[host]`: the helper program `docker-credential-<name>`;
2. `credsStore`: one helper for every registry;
3. `auths[host]`: credentials stored in the file itself (`auth` is base64 `user:password`,
   or `username`/`password`, or an `identitytoken`).

A helper is run as `docker-credential-<name> get` with the server address on stdin and
prints `{"ServerURL", "Username", "Secret"}`; the username `<token>` means the secret is an
identity token. A helper that does not know the host says "credentials not found", which
is not an error: the registry may need none.

`auths` keys are matched as the CLI matches them: exactly, or after dropping a scheme and a
path (`https://registry.example.com/v1/` is `registry.example.com`); Docker Hub's key is
`https://index.docker.io/v1/`.

Secrets stay in `Credentials` (their repr hides them); messages name only where
credentials came from (`source`), never their value.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# A credential helper is a local program (a keychain, or a cloud CLI minting a token); one
# that takes longer than this is stuck, and a push must not wait on it forever.
HELPER_TIMEOUT_SECONDS = 30.0
HELPER_PREFIX = "docker-credential-"
NOT_FOUND_MARKERS = ("credentials not found", "no credentials", "not found in native keychain")


class CredentialsError(Exception):
    """The Docker config or a credential helper could not be read."""


@dataclass(frozen=True)
class Credentials:
    """What to log in to `host` with. `source` says where it came from (for messages)."""

    host: str
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = ""

    def auth_config(self) -> dict[str, str]:
        """The docker SDK's `auth_config` (sent to the engine as X-Registry-Auth)."""
        if self.identity_token:
            return {"identitytoken": self.identity_token, "serveraddress": self.host}
        return {"username": self.username, "password": self.password,
                "serveraddress": self.host}

    @property
    def usable_by_cluster(self) -> bool:
        """A kubelet can log in with a username and password; an identity token is an
        OAuth refresh token only the docker CLI's flow understands."""
        return bool(self.username and self.password)


def config_dir(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def config_path(environ: Mapping[str, str] | None = None) -> str:
    return os.path.join(config_dir(environ), "config.json")


def load_config(path: str) -> dict[str, Any]:
    """The Docker config file as a dict; {} when there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot read the Docker config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CredentialsError(f"the Docker config {path} is not a JSON object")
    return data


def normalize_host(key: str) -> str:
    """`https://host:port/v1/` -> `host:port`, as the docker CLI's ConvertToHostname."""
    text = key
    for scheme in ("http://", "https://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
            break
    return text.split("/", 1)[0]


def registry_host(image_ref_or_host: str) -> str:
    """The registry host of an image name or host (`docker.io` when the name has none)."""
    first = image_ref_or_host.split("/", 1)[0]
    if "/" not in image_ref_or_host:
        return normalize_host(first) if ("." in first or ":" in first
                                         or first == "localhost") else "docker.io"
    if "." in first or ":" in first or first == "localhost":
        return first
    return "docker.io"


def _is_docker_hub(host: str) -> bool:
    return host in DOCKER_HUB_HOSTS


def _from_auths(host: str, auths: Mapping[str, Any], path: str) -> Credentials | None:
    wanted = {host} | ({"docker.io", "index.docker.io"} if _is_docker_hub(host) else set())
    for key, entry in auths.items():
        if not isinstance(entry, dict) or normalize_host(str(key)) not in wanted:
            continue
        username = str(entry.get("username") or "")
        password = str(entry.get("password") or "")
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            try:
                decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (ValueError, UnicodeDecodeError):
                raise CredentialsError(f"the `auth` of {key!r} in {path} is not base64 "
                                       "user:password; run `docker login` again") from None
            username, sep, password = decoded.partition(":")
            if not sep:
                raise CredentialsError(f"the `auth` of {key!r} in {path} has no user:password;"
                                       " run `docker login` again")
        token = str(entry.get("identitytoken") or "")
        if username or token:
            return Credentials(host=host, username=username, password=password,
                               identity_token=token, source=f"auths[{key!r}] in {path}")
    return None


def run_helper(helper: str, server: str, *, timeout: float = HELPER_TIMEOUT_SECONDS,
               environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """`docker-credential-<helper> get` for `server`: its JSON answer, or None when it has
    no credentials for it. Blocking: call it in a worker thread."""
    program = HELPER_PREFIX + helper
    try:
        done = subprocess.run([program, "get"], input=server.encode(), capture_output=True,
                              timeout=timeout, check=False,
                              env=None if environ is None else dict(environ))
    except FileNotFoundError:
        raise CredentialsError(f"the Docker config names the credential helper {helper!r}, "
                               f"but {program} is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise CredentialsError(f"the credential helper {program} did not answer within "
                               f"{timeout:.0f}s") from None
    out = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0:
        text = (out or done.stderr.decode(errors="replace")).strip()
        if any(marker in text.lower() for marker in NOT_FOUND_MARKERS):
            return None
        # The helper's own message (not its output on success, which holds the secret).
        raise CredentialsError(f"the credential helper {program} failed for {server}: "
                               f"{text[:300]}")
    try:
        data = json.loads(out)
    except ValueError:
        raise CredentialsError(f"the credential helper {program} printed no JSON") from None
    return data if isinstance(data, dict) else None


def _from_helper(host: str, helper: str, environ: Mapping[str, str] | None
                 ) -> Credentials | None:
    servers = [host] if not _is_docker_hub(host) else [DOCKER_HUB_KEY, host]
    for server in servers:
        data = run_helper(helper, server, environ=environ)
        if not data:
            continue
        username = str(data.get("Username") or "")
        secret = str(data.get("Secret") or "")
        source = f"credential helper {HELPER_PREFIX}{helper}"
        if username == "<token>":
            return Credentials(host=host, identity_token=secret, source=source)
        if username or secret:
            return Credentials(host=host, username=username, password=secret, source=source)
    return None


def find_credentials(host: str, environ: Mapping[str, str] | None = None
                     ) -> Credentials | None:
    """Credentials for the registry `host` (`host[:port]`, or an image name), or None when
    the Docker config has none for it. Blocking (helpers are programs): use a thread."""
    host = registry_host(host)
    path = config_path(environ)
    config = load_config(path)
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if normalize_host(str(key)) == host and isinstance(helper, str) and helper:
                return _from_helper(host, helper, environ)
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        found = _from_helper(host, store, environ)
        if found:
            return found
    auths = config.get("auths")
    if isinstance(auths, dict):
        return _from_auths(host, auths, path)
    return None


def dockerconfigjson(credentials: Credentials, *, hosts: tuple[str, ...] = ()) -> str:
    """The `.dockerconfigjson` of an image pull secret for the hosts the cluster pulls from
    (default: the credentials' host)."""
    if not credentials.usable_by_cluster:
        raise CredentialsError(f"the credentials for {credentials.host} "
                               f"({credentials.source}) are an identity token, which the "
                               "cluster cannot pull with")
    auth = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    entry = {"username": credentials.username, "password": credentials.password, "auth": auth}
    return json.dumps({"auths": {host: entry for host in (hosts or (credentials.host,))}},
                      sort_keys=True)
