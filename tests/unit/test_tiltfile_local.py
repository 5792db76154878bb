"""local(), local_resource(), probes, link() and the trigger mode constants."""

from __future__ import annotations

import pytest

from devloop.model import plan as p
from devloop.tiltfile.areas import default_areas
from devloop.tiltfile.context import EvalContext
from devloop.tiltfile.errors import BuiltinError, TiltfileError
from devloop.tiltfile.evaluator import evaluate
from devloop.tiltfile.local_area import LocalArea


def fails(tiltfile, text, files=None) -> TiltfileError:
    with pytest.raises(TiltfileError) as info:
        tiltfile(text, files=files)
    return info.value


# ---------------------------------------------------------------------------- local


def test_local_returns_stdout_as_a_blob_and_echoes_like_tilt(tiltfile):
    result = tiltfile("""
        out = local('echo hello; echo oops >&2')
        print(type(out), repr(str(out)))
    """)
    assert result.output == ("local: echo hello; echo oops >&2", " → hello", " → oops",
                             'blob "hello\\n"')


def test_local_list_runs_as_argv_without_a_shell(tiltfile):
    result = tiltfile("print(str(local(['echo', '$HOME; x'], quiet=True)).strip())\n")
    assert result.output == ("local: echo '$HOME; x'", "$HOME; x")


def test_local_quiet_and_echo_off_silence_the_log(tiltfile):
    result = tiltfile("x = local('echo secret', quiet=True, echo_off=True)\nprint(str(x))\n")
    assert result.output == ("secret\n",)


def test_local_without_output_says_so(tiltfile):
    assert tiltfile("local('true')\n").output == ("local: true", " → [no output]")


def test_local_runs_in_dir_relative_to_the_calling_file_with_env_and_stdin(tiltfile, tmp_path):
    result = tiltfile("""
        include('sub/Tiltfile')
    """, files={"sub/Tiltfile": """
        here = local('pwd', quiet=True, echo_off=True)
        there = local('pwd', dir='inner', quiet=True, echo_off=True)
        env = local('echo $GREETING', env={'GREETING': 'hi'}, quiet=True, echo_off=True)
        piped = local('cat', stdin='from stdin', quiet=True, echo_off=True)
        print(str(here).strip(), str(there).strip(), str(env).strip(), str(piped))
    """, "sub/inner/.keep": ""})
    sub = tmp_path / "sub"
    assert result.output == (f"{sub} {sub / 'inner'} hi from stdin",)


class _OsStub:
    """A bare `os` module, so os.environ works before (or without) the os area."""

    def builtins(self):
        return {"os.name": "posix"}

    def environ_builtins(self):
        return {}

    def contribute(self, draft):
        pass


def test_local_sees_os_environ_changes_made_earlier_in_the_tiltfile(tmp_path):
    def areas(ctx):
        found = default_areas(ctx)
        if not any(name.startswith("os.") for area in found for name in area.builtins()):
            found.append(_OsStub())
        return found

    (tmp_path / "Tiltfile").write_text(
        "before = str(local('echo ${DL_TEST_VAR:-unset}', quiet=True, echo_off=True)).strip()\n"
        "os.environ['DL_TEST_VAR'] = 'changed'\n"
        "after = str(local('echo $DL_TEST_VAR', quiet=True, echo_off=True)).strip()\n"
        "print(before, after)\n")
    result = evaluate(str(tmp_path / "Tiltfile"), area_factory=areas)
    assert result.output == ("unset changed",)


def test_local_failure_reports_command_exit_status_and_output(tmp_path):
    area = LocalArea(EvalContext(main_path=str(tmp_path / "Tiltfile")))
    with pytest.raises(BuiltinError) as info:
        area.local({"PATH": "/usr/bin:/bin"}, "echo partial; echo broken >&2; exit 3",
                   quiet=True)
    assert str(info.value) == (
        'local: Command "echo partial; echo broken >&2; exit 3" failed.\n'
        "error: exit status 3\n\nstdout:\npartial\nstderr:\nbroken")


def test_local_failure_fails_the_tiltfile_at_the_call(tiltfile):
    error = fails(tiltfile, "x = 1\nlocal('echo broken >&2; exit 3')\n")
    assert "broken" in error.message
    assert error.location is not None and error.location.line == 2


def test_local_in_a_missing_dir_fails_with_the_reason(tmp_path):
    area = LocalArea(EvalContext(main_path=str(tmp_path / "Tiltfile")))
    with pytest.raises(BuiltinError, match="local: Command 'true' failed.\nerror: No such file"):
        area.local({}, "true", dir="does-not-exist")


@pytest.mark.parametrize(("text", "message"), [
    ("local('')", "local: for parameter 'command': command is empty"),
    ("local(42)", "local: for parameter 'command': got int, want string or list of strings"),
    ("local('true', env=['A'])", "local: for parameter 'env': got list, want dict"),
    ("local('true', stdin=3)", "local: for parameter 'stdin': got int, want string or blob"),
    ("local('true', quiet='no')", "local: for parameter 'quiet': got string, want bool"),
    ("local(['/no/such/program'])", "No such file or directory"),
    ("local('true', bogus=1)", "unexpected keyword argument 'bogus'"),
])
def test_local_argument_errors(tiltfile, text, message):
    error = fails(tiltfile, text + "\n")
    assert message in error.message
    assert error.location is not None and error.location.line == 1


# ---------------------------------------------------------------------------- local_resource


def test_local_resource_with_serve_cmd_probe_and_deps(tiltfile, tmp_path):
    result = tiltfile("""
        local_resource('api', cmd='go build ./...', deps=['src', 'go.mod'],
            serve_cmd=['./api', '--port', '8080'], serve_env={'PORT': '8080'},
            serve_dir='bin', env={'CGO_ENABLED': '0'}, dir='src',
            readiness_probe=probe(period_secs=2, failure_threshold=5,
                                  http_get=http_get_action(8080, path='/healthz')),
            resource_deps=['db'], ignore=['src/*.tmp'], trigger_mode=TRIGGER_MODE_MANUAL,
            auto_init=False, allow_parallel=True, labels=['backend', 'go'],
            links=['http://localhost:8080', link('http://localhost:8080/docs', 'docs')],
            tags=['unit'], cmd_bat='build.bat', serve_cmd_bat='api.exe')
    """)
    resource = result.plan.resource("api")
    assert resource == p.Resource(
        name="api", type=p.ResourceType.LOCAL, labels=("backend", "go"),
        resource_deps=("db",), trigger_mode=p.TriggerMode.MANUAL, auto_init=False,
        links=(p.Link("http://localhost:8080"), p.Link("http://localhost:8080/docs", "docs")),
        cmd=p.CommandSpec(("sh", "-c", "go build ./..."), True, (("CGO_ENABLED", "0"),),
                          str(tmp_path / "src")),
        serve_cmd=p.CommandSpec(("./api", "--port", "8080"), False, (("PORT", "8080"),),
                                str(tmp_path / "bin")),
        deps=(str(tmp_path / "src"), str(tmp_path / "go.mod")), ignore=("src/*.tmp",),
        allow_parallel=True,
        readiness_probe=p.Probe(p.HttpGetAction(8080, path="/healthz"), period_secs=2,
                                failure_threshold=5))


def test_local_resource_defaults(tiltfile, tmp_path):
    result = tiltfile("local_resource('lint', 'make lint')\n")
    resource = result.plan.resource("lint")
    assert resource.cmd == p.CommandSpec(("sh", "-c", "make lint"), True, (), str(tmp_path))
    assert resource.serve_cmd is None and resource.deps == () and resource.labels == ()
    assert (resource.trigger_mode, resource.auto_init, resource.allow_parallel) == (
        p.TriggerMode.AUTO, True, False)


def test_local_resource_in_an_included_file_runs_in_that_directory(tiltfile, tmp_path):
    result = tiltfile("include('tools/Tiltfile')\n", files={
        "tools/Tiltfile": "local_resource('gen', serve_cmd='./gen', deps=['.'], labels='x')\n"})
    resource = result.plan.resource("gen")
    assert resource.serve_cmd is not None
    assert resource.serve_cmd.dir == str(tmp_path / "tools")
    assert resource.deps == (str(tmp_path / "tools"),)
    assert resource.labels == ("x",)


@pytest.mark.parametrize(("action", "expected"), [
    ("exec=exec_action(['curl', '-f', 'localhost'])",
     p.ExecAction(("curl", "-f", "localhost"))),
    ("tcp_socket=tcp_socket_action(5432, host='127.0.0.1')",
     p.TcpSocketAction(5432, "127.0.0.1")),
    ("http_get=http_get_action(80, host='web', scheme='HTTPS', path='/ready')",
     p.HttpGetAction(80, "web", "https", "/ready")),
])
def test_probe_actions(tiltfile, action, expected):
    result = tiltfile(f"""
        local_resource('svc', serve_cmd='run', readiness_probe=probe(
            initial_delay_secs=1, timeout_secs=2, period_secs=3, success_threshold=4,
            failure_threshold=5, {action}))
    """)
    assert result.plan.resource("svc").readiness_probe == p.Probe(expected, 1, 2, 3, 4, 5)


def test_probe_values_are_structs_with_tilts_type_names(tiltfile):
    result = tiltfile("""
        pr = probe(tcp_socket=tcp_socket_action(80))
        print(type(pr), type(pr.tcp_socket), pr.tcp_socket.port, pr.period_secs, pr.exec)
        print(TRIGGER_MODE_AUTO, TRIGGER_MODE_MANUAL, type(link('http://x')))
    """)
    assert result.output == ("Probe TCPSocketAction 80 10 None", "0 1 link")


@pytest.mark.parametrize(("text", "message"), [
    ("local_resource('a')",
     "local_resource: local_resource must have a cmd and/or a serve_cmd, but both were empty"),
    ("local_resource('a', 'x')\nlocal_resource('a', 'y')",
     "local_resource: Local resource a has been defined multiple times"),
    ("local_resource('', 'x')", "local_resource: for parameter 'name': must not be empty"),
    ("local_resource('a', 'x', trigger_mode=2)",
     "for parameter 'trigger_mode': got 2, want TRIGGER_MODE_AUTO or TRIGGER_MODE_MANUAL"),
    ("local_resource('a', 'x', labels=['has space'])",
     "for parameter 'labels': invalid label 'has space'"),
    ("local_resource('a', 'x', deps=3)",
     "for parameter 'deps': got int, want string or list of strings"),
    ("local_resource('a', 'x', readiness_probe=http_get_action(80))",
     "for parameter 'readiness_probe': got HTTPGetAction, want Probe"),
    ("local_resource('a', 'x', links=[3])",
     "for parameter 'links': got int, want string or link()"),
    ("local_resource('a', 'x', env={'A': 1})", "for parameter 'env[A]': got int, want string"),
    ("local_resource('a', 'x', serve_cmd_bad='y')",
     "unexpected keyword argument 'serve_cmd_bad'"),
    ("probe()", "probe: exactly one of exec, http_get, or tcp_socket must be specified"),
    ("probe(exec=exec_action(['a']), tcp_socket=tcp_socket_action(1))",
     "probe: exactly one of exec, http_get, or tcp_socket must be specified"),
    ("probe(exec=['true'])", "probe: for parameter 'exec': got list, want ExecAction"),
    ("probe(period_secs='1', exec=exec_action(['a']))",
     "probe: for parameter 'period_secs': got string, want int"),
    ("probe(timeout_secs=-1, exec=exec_action(['a']))", "must not be negative"),
    ("exec_action('curl x')", "exec_action: for parameter 'command': got string, want list"),
    ("http_get_action('80')", "http_get_action: for parameter 'port': got string, want int"),
    ("http_get_action(80, scheme='ftp')", "for parameter 'scheme': got 'ftp'"),
    ("tcp_socket_action(70000)", "tcp_socket_action: for parameter 'port': 70000 is not a port"),
])
def test_local_resource_and_probe_errors(tiltfile, text, message):
    error = fails(tiltfile, text + "\n")
    assert message in error.message
    assert error.location is not None and error.location.line == text.count("\n") + 1


def test_a_local_resource_named_like_a_compose_service_is_an_error(tiltfile):
    error = fails(tiltfile, """
        docker_compose('compose.yaml')
        local_resource('db', 'echo')
    """, files={"compose.yaml": "services:\n  db:\n    image: postgres\n"})
    assert "resource name 'db'" in error.message and "already used" in error.message
