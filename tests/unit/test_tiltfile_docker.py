"""docker_build, custom_build, default_registry and live_update steps as Tilt defines them."""

from __future__ import annotations

import pytest

from devloop.model import plan as p
from devloop.model.images import parse_image_ref, refs_match
from devloop.tiltfile.errors import TiltfileError

APP = {"app/Dockerfile": "FROM scratch\n", "app/src/main.py": "print(1)\n"}


def fails(tiltfile, text, files=None) -> TiltfileError:
    with pytest.raises(TiltfileError) as info:
        tiltfile(text, files=APP | (files or {}))
    return info.value


def test_docker_build_with_every_argument(tiltfile, tmp_path):
    result = tiltfile("""
        docker_build('gcr.io/proj/app', 'app',
            build_args={'MODE': 'dev', 'V': '2'},
            dockerfile='docker/Dev.Dockerfile',
            live_update=[sync('app/src', '/srv/src')],
            match_in_env_vars=True,
            ignore=['*.log', 'tmp/'],
            only=['src', 'requirements.txt'],
            entrypoint=['python', '-m', 'app'],
            target='dev', ssh='default', network='host', secret=['id=npm,src=.npmrc'],
            extra_tag=['gcr.io/proj/app:dev'], container_args=['--debug'],
            cache_from='gcr.io/proj/app:cache', pull=True, platform='linux/amd64',
            extra_hosts=['db:10.0.0.2'])
    """, files=APP | {"docker/Dev.Dockerfile": "FROM scratch\n"})
    image = result.plan.image("gcr.io/proj/app")
    assert image == p.DockerBuild(
        ref="gcr.io/proj/app", context=str(tmp_path / "app"),
        dockerfile=str(tmp_path / "docker/Dev.Dockerfile"), dockerfile_contents=None,
        build_args=(("MODE", "dev"), ("V", "2")), target="dev",
        only=("src", "requirements.txt"), ignore=("*.log", "tmp/"),
        entrypoint=("python", "-m", "app"),
        live_update=(p.SyncStep(str(tmp_path / "app/src"), "/srv/src"),),
        match_in_env_vars=True, platform="linux/amd64", network="host", ssh=("default",),
        secret=("id=npm,src=.npmrc",), extra_tag=("gcr.io/proj/app:dev",),
        cache_from=("gcr.io/proj/app:cache",), pull=True, container_args=("--debug",),
        extra_hosts=("db:10.0.0.2",))
    assert str(tmp_path / "docker/Dev.Dockerfile") in result.plan.config_files


def test_docker_build_defaults_to_the_context_dockerfile_and_records_it(tiltfile, tmp_path):
    result = tiltfile("docker_build('app', './app')\n", files=APP)
    image = result.plan.image("app")
    assert isinstance(image, p.DockerBuild)
    assert image.dockerfile == str(tmp_path / "app/Dockerfile")
    assert image.live_update == () and image.container_args is None
    assert str(tmp_path / "app/Dockerfile") in result.plan.config_files
    assert str(tmp_path / "app/.dockerignore") in result.plan.config_files


def test_docker_build_paths_are_relative_to_the_calling_file(tiltfile, tmp_path):
    result = tiltfile("include('svc/Tiltfile')\n", files={
        "svc/Tiltfile": "docker_build('svc', '.', live_update=[sync('src', '/app')])\n",
        "svc/Dockerfile": "FROM scratch\n"})
    image = result.plan.image("svc")
    assert image.context == str(tmp_path / "svc")
    assert image.live_update == (p.SyncStep(str(tmp_path / "svc/src"), "/app"),)


@pytest.mark.parametrize("contents", [
    "'FROM busybox'", "local('printf \"FROM busybox\"', quiet=True, echo_off=True)"])
def test_dockerfile_contents_takes_a_string_or_blob(tiltfile, contents):
    result = tiltfile(f"docker_build('app', 'nodockerfile', dockerfile_contents={contents})\n")
    assert result.plan.image("app").dockerfile_contents == "FROM busybox"


@pytest.mark.parametrize(("entrypoint", "expected"), [
    ("'node server.js'", ("sh", "-c", "node server.js")),
    ("['node', 'server.js']", ("node", "server.js")),
])
def test_entrypoint_string_is_shell_form_list_is_exec_form(tiltfile, entrypoint, expected):
    result = tiltfile(f"docker_build('app', 'app', entrypoint={entrypoint})\n", files=APP)
    assert result.plan.image("app").entrypoint == expected


@pytest.mark.parametrize(("text", "message"), [
    ("docker_build('app', 'missing')", "docker_build: dockerfile not found: "),
    ("docker_build('app', 'app', dockerfile='nope/Dockerfile')",
     "docker_build: dockerfile not found: "),
    ("docker_build('app', 'app')\ncustom_build('app', 'make', ['app'])",
     "custom_build: Image for ref 'app' has already been defined"),
    ("docker_build('app', 'app')\ndocker_build('docker.io/library/app', 'app')",
     "has already been defined"),
    ("docker_build('My/App', 'app')",
     "docker_build: Argument 1 (ref): can't parse 'My/App': invalid reference format: "
     "repository name must be lowercase"),
    ("docker_build('a b', 'app')", "can't parse 'a b': invalid reference format"),
    ("docker_build('app', 3)", "docker_build: for parameter 'context': got int, want string"),
    ("docker_build('app', 'app', bogus=1)", "unexpected keyword argument 'bogus'"),
    ("docker_build('app', 'app', dockerfile='app/Dockerfile', dockerfile_contents='FROM x')",
     "docker_build: Cannot specify both dockerfile and dockerfile_contents"),
    ("docker_build('app', 'app', dockerfile_contents=3)",
     "for parameter 'dockerfile_contents': got int, want string or blob"),
    ("docker_build('app', 'app', only=['src/*.py'])",
     "'only' does not support '*' file globs. Must be a real path: src/*.py"),
    ("docker_build('app', 'app', extra_tag='Bad Tag')",
     "Argument extra_tag='Bad Tag' not a valid image reference"),
    ("docker_build('app', 'app', build_args=['A'])",
     "for parameter 'build_args': got list, want dict"),
    ("docker_build('app', 'app', pull='yes')", "for parameter 'pull': got string, want bool"),
    ("docker_build('app', 'app', container_args='--x')",
     "for parameter 'container_args': got string, want list of strings"),
    ("docker_build('app', 'app', ignore='a\\nb')", "ignore cannot contain newlines"),
])
def test_docker_build_errors_name_the_problem_and_line(tiltfile, text, message):
    error = fails(tiltfile, "x = 1\n" + text + "\n")
    assert message in error.message
    assert error.location is not None and error.location.line == text.count("\n") + 2


# ---------------------------------------------------------------------------- live_update


def test_live_update_steps_in_order_become_plan_steps(tiltfile, tmp_path):
    result = tiltfile("""
        docker_build('app', 'app', live_update=[
            initial_sync(),
            fall_back_on(['app/requirements.txt']),
            sync('app/src', '/srv/src'),
            sync('./app', '/srv'),
            run('pip install -r /srv/requirements.txt', trigger='app/requirements.txt'),
            run(['touch', '/tmp/reload'], echo_off=True),
            restart_container(),
        ])
    """, files=APP)
    assert result.plan.image("app").live_update == (
        p.InitialSyncStep(),
        p.FallBackOnStep((str(tmp_path / "app/requirements.txt"),)),
        p.SyncStep(str(tmp_path / "app/src"), "/srv/src"),
        p.SyncStep(str(tmp_path / "app"), "/srv"),
        p.RunStep(("sh", "-c", "pip install -r /srv/requirements.txt"), True,
                  (str(tmp_path / "app/requirements.txt"),)),
        p.RunStep(("touch", "/tmp/reload"), False, (), True),
        p.RestartContainerStep(),
    )


def test_live_update_step_values_have_tilts_type_names(tiltfile):
    result = tiltfile("""
        print(type(sync('a', '/b')), type(run('x')), type(fall_back_on('f')),
              type(restart_container()), type(initial_sync()))
        s = sync('a', '/b')
        print(s.remote_path)
    """)
    assert result.output == (
        "live_update_sync_step live_update_run_step live_update_fall_back_on_step "
        "live_update_restart_container_step live_update_initial_sync_step", "/b")


@pytest.mark.parametrize(("steps", "message"), [
    ("[sync('app/src', 'relative/dir')]", "sync destination 'relative/dir' is not absolute"),
    ("[run('make'), sync('app/src', '/app')]", "all sync steps must precede all run steps"),
    ("[sync('app/src', '/app'), fall_back_on('app/x')]",
     "fall_back_on steps must appear at the start of the list"),
    ("[sync('app/src', '/app'), restart_container(), run('x')]",
     "run('x') at {tmp}/Tiltfile:1:"),
    ("[sync('app/src', '/app'), restart_container(), run('x')]",
     "restart_container is only valid as the last step"),
    ("[sync('app/src', '/app'), initial_sync()]",
     "initial_sync must appear at most once, at the start of the list"),
    ("['not a step']", "'steps' must be a list of live update steps - got value of type "
                       "'string'"),
    ("[fall_back_on('app/x')]", "must contain at least 1 sync or 1 run step"),
])
def test_live_update_validation_errors(tiltfile, tmp_path, steps, message):
    error = fails(tiltfile, f"steps = {steps}\ndocker_build('app', 'app', live_update=steps)\n")
    assert error.message.startswith("docker_build: live_update: ")
    assert message.format(tmp=tmp_path) in error.message
    assert error.location is not None and error.location.line == 2


@pytest.mark.parametrize(("text", "message"), [
    ("sync('a')", "missing 1 required positional argument: 'remote_path'"),
    ("sync(1, '/a')", "sync: for parameter 'local_path': got int, want string"),
    ("run(3)", "run: for parameter 'cmd': got int, want string or list of strings"),
    ("run('')", "run: for parameter 'cmd': command is empty"),
    ("run('x', trigger=[1])", "run: for parameter 'trigger': got int, want string"),
    ("restart_container(1)", "takes 1 positional argument"),
])
def test_live_update_step_argument_errors(tiltfile, text, message):
    error = fails(tiltfile, text + "\n")
    assert message in error.message
    assert error.location is not None and error.location.line == 1


# ---------------------------------------------------------------------------- custom_build


@pytest.mark.parametrize(("command", "argv", "shell"), [
    ("'docker build -t $EXPECTED_REF .'", ("sh", "-c", "docker build -t $EXPECTED_REF ."),
     True),
    ("['./build.sh', '--fast']", ("./build.sh", "--fast"), False),
])
def test_custom_build_string_runs_in_a_shell_list_as_argv(tiltfile, tmp_path, command, argv,
                                                         shell):
    result = tiltfile(f"custom_build('app', {command}, ['app'])\n", files=APP)
    image = result.plan.image("app")
    assert isinstance(image, p.CustomBuild)
    assert (image.command, image.shell) == (argv, shell)
    assert image.deps == (str(tmp_path / "app"),)
    assert image.dir == str(tmp_path)


def test_custom_build_with_every_argument(tiltfile, tmp_path):
    result = tiltfile("""
        custom_build('registry.local/app', 'make image', deps=['app', 'Makefile'],
            disable_push=True, skips_local_docker=True,
            live_update=[sync('app/src', '/src')], match_in_env_vars=True, ignore='*.tmp',
            entrypoint='run-app', command_bat='make.bat', outputs_image_ref_to='ref.txt',
            container_args=['-v'], env={'GOOS': 'linux'}, dir='app',
            image_deps=['base-image'])
    """, files=APP)
    assert result.plan.image("registry.local/app") == p.CustomBuild(
        ref="registry.local/app", command=("sh", "-c", "make image"), shell=True,
        deps=(str(tmp_path / "app"), str(tmp_path / "Makefile")), tag="",
        skips_local_docker=True, disable_push=True,
        outputs_image_ref_to=str(tmp_path / "ref.txt"),
        live_update=(p.SyncStep(str(tmp_path / "app/src"), "/src"),), ignore=("*.tmp",),
        entrypoint=("sh", "-c", "run-app"), match_in_env_vars=True, env=(("GOOS", "linux"),),
        dir=str(tmp_path / "app"), image_deps=("base-image",), container_args=("-v",))


@pytest.mark.parametrize(("text", "message"), [
    ("custom_build('app', '', ['app'])", "custom_build: Argument 2 (command) can't be empty"),
    ("custom_build('app', 'make', ['app'], tag='v1', outputs_image_ref_to='f')",
     "Cannot specify both tag= and outputs_image_ref_to="),
    ("custom_build('app', 42, ['app'])",
     "for parameter 'command': got int, want string or list of strings"),
    ("custom_build('app', 'make', ['app'], env=['A=1'])",
     "for parameter 'env': got list, want dict"),
    ("custom_build('app', 'make', ['app'], image_deps=['Bad Ref'])",
     "custom_build: image_deps: can't parse 'Bad Ref'"),
    ("custom_build('app', 'make', ['app'], nope=True)", "unexpected keyword argument 'nope'"),
])
def test_custom_build_errors(tiltfile, text, message):
    error = fails(tiltfile, text + "\n")
    assert message in error.message
    assert error.location is not None and error.location.line == 1


# ---------------------------------------------------------------------------- default_registry


def test_default_registry_sets_the_plan_settings(tiltfile):
    result = tiltfile("default_registry('localhost:5000', host_from_cluster='registry:5000',"
                      " single_name='all')\n")
    settings = result.plan.settings
    assert settings.default_registry == "localhost:5000"
    assert settings.default_registry_host_from_cluster == "registry:5000"
    assert settings.default_registry_single_name == "all"


@pytest.mark.parametrize(("text", "message"), [
    ("default_registry('a.io')\ndefault_registry('b.io')",
     "default_registry: default registry already defined"),
    ("default_registry('', single_name='x')",
     "default_registry: for parameter 'host': must not be empty"),
    ("default_registry('not a host')", "default_registry: validating defaultRegistry"),
    ("default_registry(5)", "default_registry: for parameter 'host': got int, want string"),
])
def test_default_registry_errors(tiltfile, text, message):
    error = fails(tiltfile, text + "\n")
    assert message in error.message
    assert error.location is not None and error.location.line == text.count("\n") + 1


# ---------------------------------------------------------------------------- refs


@pytest.mark.parametrize(("text", "normalized"), [
    ("app", "docker.io/library/app"),
    ("org/app:v1", "docker.io/org/app:v1"),
    ("localhost:5000/app", "localhost:5000/app"),
    ("gcr.io/proj/app@sha256:" + "a" * 64, "gcr.io/proj/app@sha256:" + "a" * 64),
])
def test_image_refs_normalize_like_docker(text, normalized):
    assert str(parse_image_ref(text)) == normalized


@pytest.mark.parametrize(("selector", "candidate", "matches"), [
    ("app", "app:v2", True),
    ("app", "docker.io/library/app", True),
    ("app:v1", "app:v2", False),
    ("gcr.io/x/app", "app", False),
])
def test_a_ref_without_tag_selects_every_tag(selector, candidate, matches):
    assert refs_match(selector, candidate) is matches
