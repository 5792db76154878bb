"""Kubeconfig loading as kubectl does it, and the credentials it puts on the wire: merged
files, relative paths, token files, exec credential plugins (a real script), TLS with a
certificate authority, tls-server-name and client certificates (a real TLS server), and
errors that name the file and the context. Also: the daemon's cluster code no longer loads
the `kubernetes` package."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from devloop.k8s import kubeconfig as kc
from devloop.k8s.client import KubeClient
from devloop.k8s.errors import KubeError
from devloop.k8s.streams import exec_blocking
from devloop.k8s.transport import Transport
from tests.unit.test_k8s_websocket import TOKEN, ThreadedServer, make_app

CA_PEM = "-----BEGIN CERTIFICATE-----\nnot checked when loading\n-----END CERTIFICATE-----\n"


def write(path: Path, config: dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return str(path)


def config(contexts: dict[str, tuple[str, str]] | None = None, *,
           clusters: dict[str, dict[str, Any]] | None = None,
           users: dict[str, dict[str, Any]] | None = None, current: str = "",
           namespaces: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Config",
        **({"current-context": current} if current else {}),
        "clusters": [{"name": n, "cluster": c} for n, c in (clusters or {}).items()],
        "users": [{"name": n, "user": u} for n, u in (users or {}).items()],
        "contexts": [{"name": n, "context": {"cluster": c, "user": u,
                                             **({"namespace": (namespaces or {})[n]}
                                                if n in (namespaces or {}) else {})}}
                     for n, (c, u) in (contexts or {}).items()]}


def test_files_merge_as_kubectl_merges_them(tmp_path, monkeypatch):
    first = write(tmp_path / "a", config(
        {"dev": ("shared", "me")}, clusters={"shared": {"server": "https://first:6443"}},
        users={"me": {"token": "first"}}, namespaces={"dev": "team"}))
    second = write(tmp_path / "b", config(
        {"dev": ("other", "me"), "prod": ("shared", "me")},
        clusters={"shared": {"server": "https://second:6443"},
                  "other": {"server": "https://other:6443"}},
        users={"me": {"token": "second"}}, current="prod"))
    missing = str(tmp_path / "missing")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([first, missing, second]))
    assert kc.list_contexts() == (["dev", "prod"], "prod")
    current = kc.load()
    # The current context is the second file's; the cluster and user of the first file.
    assert (current.context, current.host, current.token) == ("prod", "https://first:6443",
                                                              "first")
    assert current.namespace == "default"
    dev = kc.load(None, "dev")
    assert (dev.cluster, dev.host, dev.namespace) == ("shared", "https://first:6443", "team")
    # An explicit path list is read the same way, without KUBECONFIG.
    monkeypatch.delenv("KUBECONFIG")
    assert kc.load(os.pathsep.join([second, first])).host == "https://second:6443"


def test_relative_paths_resolve_against_the_file_that_names_them(tmp_path):
    certs = tmp_path / "kube" / "certs"
    certs.mkdir(parents=True)
    for name in ("ca.crt", "me.crt", "me.key"):
        (certs / name).write_text("x")
    (tmp_path / "kube" / "token").write_text("from-file\n")
    path = write(tmp_path / "kube" / "config", config(
        {"c": ("k", "me")}, current="c",
        clusters={"k": {"server": "https://k:6443", "certificate-authority": "certs/ca.crt"}},
        users={"me": {"client-certificate": "certs/me.crt", "client-key": "certs/me.key",
                      "tokenFile": "token"}}))
    loaded = kc.load(path)
    assert loaded.ca_file == str(certs / "ca.crt")
    assert (loaded.client_cert_file, loaded.client_key_file) == (str(certs / "me.crt"),
                                                                 str(certs / "me.key"))
    assert loaded.token_file == str(tmp_path / "kube" / "token")


def test_a_token_file_is_read_and_read_again_later(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("one\n")
    path = write(tmp_path / "config", config(
        {"c": ("k", "me")}, current="c", clusters={"k": {"server": "http://127.0.0.1:1"}},
        users={"me": {"tokenFile": str(token)}}))
    transport = Transport(kc.load(path))
    assert transport.prepare().headers["Authorization"] == "Bearer one"
    token.write_text("two\n")
    assert transport.prepare().headers["Authorization"] == "Bearer one"  # within a minute
    monkeypatch.setattr(kc, "TOKEN_FILE_SECONDS", 0.0)
    assert transport.prepare().headers["Authorization"] == "Bearer two"


def test_basic_auth(tmp_path):
    path = write(tmp_path / "config", config(
        {"c": ("k", "me")}, current="c", clusters={"k": {"server": "http://127.0.0.1:1"}},
        users={"me": {"username": "ann", "password": "pw"}}))
    assert Transport(kc.load(path)).prepare().headers["Authorization"] == "Basic YW5uOnB3"


def plugin(tmp_path: Path, body: str) -> Path:
    """An exec credential plugin: a Python script; `calls` counts its runs."""
    script = tmp_path / "bin" / "plugin"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent("""\
        import json, os, sys
        calls = os.path.join(os.path.dirname(__file__), "calls")
        n = len(open(calls).read().splitlines()) + 1 if os.path.exists(calls) else 1
        with open(calls, "a") as f:
            f.write(json.dumps({"args": sys.argv[1:], "env": os.environ.get("GREETING"),
                                "info": json.loads(os.environ["KUBERNETES_EXEC_INFO"])})
                    + "\\n")
        """) + textwrap.dedent(body))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "bin" / "calls"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def exec_config(tmp_path: Path, server: str, api_version: str = "v1",
                **extra: Any) -> str:
    return write(tmp_path / "config", config(
        {"c": ("k", "me")}, current="c", clusters={"k": {"server": server}},
        users={"me": {"exec": {
            "apiVersion": f"client.authentication.k8s.io/{api_version}",
            "command": "bin/plugin", "args": ["--cluster", "k"],
            "env": [{"name": "GREETING", "value": "hi"}], "interactiveMode": "Never",
            **extra}}}))


def credential(api_version: str, status: str) -> str:
    return (f'print(json.dumps({{"apiVersion": "client.authentication.k8s.io/{api_version}",'
            f'"kind": "ExecCredential", "status": {status}}}))\n')


@pytest.mark.parametrize("api_version", ["v1", "v1beta1"])
def test_an_exec_plugin_runs_once_while_its_token_is_valid(tmp_path, api_version):
    plugin(tmp_path, credential(api_version, '{"token": f"t{n}", '
                                             '"expirationTimestamp": "2999-01-01T00:00:00Z"}'))
    path = exec_config(tmp_path, "https://k.example:6443", api_version,
                       provideClusterInfo=True)
    transport = Transport(kc.load(path))
    assert transport.prepare().headers["Authorization"] == "Bearer t1"
    assert transport.prepare().headers["Authorization"] == "Bearer t1"
    [call] = calls(tmp_path)
    assert call["args"] == ["--cluster", "k"] and call["env"] == "hi"
    assert call["info"] == {
        "apiVersion": f"client.authentication.k8s.io/{api_version}", "kind": "ExecCredential",
        "spec": {"interactive": False, "cluster": {"server": "https://k.example:6443"}}}


def test_an_expired_exec_credential_is_fetched_again(tmp_path):
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 5))
    plugin(tmp_path, credential("v1", f'{{"token": f"t{{n}}", '
                                      f'"expirationTimestamp": "{soon}"}}'))
    transport = Transport(kc.load(exec_config(tmp_path, "https://k:6443")))
    # Within EXPIRY_MARGIN_SECONDS of its expiry, a token is not used any more.
    assert transport.prepare().headers["Authorization"] == "Bearer t1"
    assert transport.prepare().headers["Authorization"] == "Bearer t2"
    assert len(calls(tmp_path)) == 2


def test_a_refused_exec_credential_is_fetched_again_once(tmp_path):
    """The API server (a real one, locally) accepts only the plugin's second token."""

    async def namespaces(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer t2":
            return web.json_response({"kind": "Status", "reason": "Unauthorized",
                                      "message": "Unauthorized", "code": 401}, status=401)
        return web.json_response({"kind": "NamespaceList", "items": []})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces", namespaces)
    server = ThreadedServer(app)
    plugin(tmp_path, credential("v1", '{"token": f"t{n}"}'))
    kube = KubeClient._create_blocking(
        exec_config(tmp_path, f"http://127.0.0.1:{server.port}"), None)
    try:
        assert kube.request("GET", "/api/v1/namespaces")["kind"] == "NamespaceList"
        assert kube.request("GET", "/api/v1/namespaces")["kind"] == "NamespaceList"
        assert len(calls(tmp_path)) == 2  # t1 refused, t2 kept
        (tmp_path / "bin" / "calls").write_text("x\nx\nx\n")  # the next token is t4
        kube.transport.config.exec_plugin._cached = None  # type: ignore[union-attr]
        with pytest.raises(KubeError) as caught:
            kube.request("GET", "/api/v1/namespaces", what="namespaces")
        assert caught.value.status == 401 and not caught.value.temporary
    finally:
        kube.close()
        server.stop()


def test_a_failing_exec_plugin_is_an_error_naming_the_user_and_the_file(tmp_path):
    plugin(tmp_path, 'sys.stderr.write("please log in\\n"); sys.exit(3)\n')
    path = exec_config(tmp_path, "https://k:6443")
    with pytest.raises(KubeError) as caught:
        Transport(kc.load(path)).prepare()
    assert caught.value.message == (
        f"kubeconfig {path}, user 'me': exec credential plugin "
        f"'{tmp_path / 'bin' / 'plugin'}' exited with 3: please log in")


def test_an_auth_provider_is_refused_naming_the_context(tmp_path):
    path = write(tmp_path / "config", config(
        {"gke_prod": ("k", "me")}, current="gke_prod",
        clusters={"k": {"server": "https://k:6443"}},
        users={"me": {"auth-provider": {"name": "gcp", "config": {}}}}))
    with pytest.raises(KubeError) as caught:
        kc.load(path)
    message = caught.value.message
    assert message.startswith(f"kubeconfig {path}, user 'me' (context 'gke_prod') uses the "
                              "auth-provider 'gcp'")
    assert "exec credential plugin" in message


def test_missing_files_and_contexts_are_errors_that_name_them(tmp_path, monkeypatch):
    missing = str(tmp_path / "nope")
    with pytest.raises(KubeError, match=f"^kubeconfig {missing} does not exist$"):
        kc.load(missing)
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([missing, missing + "2"]))
    with pytest.raises(KubeError, match="^no kubeconfig: none of .*nope, .*nope2 exists$"):
        kc.load()
    path = write(tmp_path / "config", config(
        {"dev": ("k", "me")}, clusters={"k": {"server": "https://k:6443"}},
        users={"me": {"token": "t"}}))
    with pytest.raises(KubeError, match="sets no current-context"):
        kc.load(path)
    with pytest.raises(KubeError) as caught:
        kc.load(path, "prod")
    assert caught.value.message == f"kubeconfig {path} has no context 'prod' (it has dev)"
    broken = write(tmp_path / "broken", config(
        {"dev": ("k", "nobody")}, current="dev", clusters={"k": {"server": "https://k:6443"}}))
    with pytest.raises(KubeError) as caught:
        kc.load(broken)
    assert caught.value.message == (f"kubeconfig {broken}, context 'dev': no user 'nobody' "
                                    f"in {broken}")


# ------------------------------------------------------------------------------------- TLS


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for kube.test only (not 127.0.0.1) and a client
    certificate for "alice", all signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name, ext in (("server", "subjectAltName=DNS:kube.test\nextendedKeyUsage=serverAuth"),
                      ("alice", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                "-extfile", f"{name}.ext", cwd=d)
    return d


@pytest.fixture
def tls_server(pki: Path) -> Iterator[ThreadedServer]:
    """An HTTPS API server that requires a client certificate from the CA and answers
    /whoami with its common name; it serves exec too."""

    async def whoami(request: web.Request) -> web.Response:
        cert = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(item[0] for item in (cert or {}).get("subject", ()))
        return web.json_response({"user": subject.get("commonName")})

    app = make_app()
    app.router.add_get("/whoami", whoami)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.crt"))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(pki / "server.crt"), str(pki / "server.key"))
    server = ThreadedServer(app, ssl_context=context)
    yield server
    server.stop()


def tls_config(tmp_path: Path, pki: Path, port: int, **cluster: Any) -> str:
    def data(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    return write(tmp_path / "config", config(
        {"c": ("k", "alice")}, current="c",
        clusters={"k": {"server": f"https://127.0.0.1:{port}",
                        "certificate-authority-data": data("ca.crt"), **cluster}},
        users={"alice": {"client-certificate-data": data("alice.crt"),
                         "client-key-data": data("alice.key"), "token": TOKEN}}))


def test_tls_trusts_the_clusters_ca_checks_tls_server_name_and_presents_the_client_cert(
        tmp_path, pki, tls_server):
    kube = KubeClient._create_blocking(
        tls_config(tmp_path, pki, tls_server.port, **{"tls-server-name": "kube.test"}), None)
    try:
        _request_and_exec(kube, b"over tls")  # the websockets use the same TLS settings
    finally:
        kube.close()


def _request_and_exec(kube: KubeClient, stdin: bytes) -> None:
    """A request and an exec (a websocket) through `kube`, both answered."""
    assert kube.request("GET", "/whoami") == {"user": "alice"}
    result = exec_blocking(kube, "ns", "pod", "c", ["cat"], stdin)
    assert (result.exit_code, result.stdout) == (0, stdin)


def test_a_server_whose_certificate_names_another_host_is_not_trusted(tmp_path, pki,
                                                                      tls_server):
    kube = KubeClient._create_blocking(tls_config(tmp_path, pki, tls_server.port), None)
    try:
        with pytest.raises(KubeError) as caught:
            kube.request("GET", "/whoami", what="whoami")
        assert caught.value.temporary and "certificate verify failed" in caught.value.message
    finally:
        kube.close()
    insecure = write(tmp_path / "insecure", {
        **yaml.safe_load(Path(tls_config(tmp_path, pki, tls_server.port)).read_text()),
        "clusters": [{"name": "k", "cluster": {
            "server": f"https://127.0.0.1:{tls_server.port}",
            "insecure-skip-tls-verify": True}}]})
    kube = KubeClient._create_blocking(insecure, None)
    try:
        with pytest.warns(Warning):  # urllib3 says the request is not verified
            assert kube.request("GET", "/whoami") == {"user": "alice"}
    finally:
        kube.close()


def test_the_cluster_code_does_not_import_the_kubernetes_package():
    code = ("import sys, devloop.engine.cluster, devloop.daemon.down; print(sorted(m for m in "
            "('kubernetes', 'pydantic', 'oauthlib', 'requests_oauthlib', 'dateutil') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "[]"


class ConnectProxy:
    """An HTTP proxy that tunnels CONNECT requests and records them (target, credentials)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._writers: list[asyncio.StreamWriter] = []
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = int(self.server.sockets[0].getsockname()[1])
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        line, *fields = head.strip().split("\r\n")
        method, target, _ = line.split(" ")
        headers = {k.lower(): v for k, v in (f.split(": ", 1) for f in fields)}
        self.seen.append((f"{method} {target}", headers.get("proxy-authorization", "")))
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        self._writers += [writer, up_writer]
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def stop(self) -> None:
        async def shut() -> None:
            self.server.close()
            for writer in self._writers:  # both ends of every tunnel see it end
                writer.transport.abort()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def test_requests_and_websockets_go_through_the_clusters_proxy(tmp_path, pki, tls_server):
    proxy = ConnectProxy()
    kube = KubeClient._create_blocking(tls_config(
        tmp_path, pki, tls_server.port, **{"tls-server-name": "kube.test",
                                           "proxy-url": f"http://ann:pw@127.0.0.1:{proxy.port}"}),
        None)
    try:
        _request_and_exec(kube, b"via proxy")
    finally:
        kube.close()
        proxy.stop()
    target = f"CONNECT 127.0.0.1:{tls_server.port}"
    assert proxy.seen == [(target, "Basic YW5uOnB3")] * 2
