"""`load('ext://restart_process', ...)` resolves to devloop's own version, with no repository."""

from __future__ import annotations

import pytest

from devloop.model import plan as p
from devloop.tiltfile.errors import TiltfileError

DOCKERFILE = {"Dockerfile": "FROM python:3.11-slim\nCMD [\"python\", \"app.py\"]\n",
              "app.py": "print('hi')\n"}


@pytest.fixture(autouse=True)
def no_repository(monkeypatch, tmp_path):
    # Any use of the extension repository would fail: the built-in version must be used.
    monkeypatch.setenv("DEVLOOP_EXTENSIONS_REPO", str(tmp_path / "no-such-repository"))
    monkeypatch.delenv("DEVLOOP_EXTENSIONS_DIR", raising=False)


def images(evaluation) -> dict[str, p.ImageTarget]:
    return {image.ref: image for image in evaluation.plan.images}


def test_docker_build_with_restart_is_a_docker_build_that_restarts(tiltfile, tmp_path):
    result = tiltfile("""
        load('ext://restart_process', 'docker_build_with_restart')
        docker_build_with_restart('app', '.', entrypoint=['python', 'app.py'],
                                  live_update=[sync('.', '/app')], build_args={'A': '1'})
    """, DOCKERFILE)
    image = images(result)["app"]
    assert isinstance(image, p.DockerBuild)
    assert image.entrypoint == ("python", "app.py")
    assert image.build_args == (("A", "1"),)
    assert image.live_update == (p.SyncStep(str(tmp_path), "/app"), p.RestartContainerStep())


def test_a_string_entrypoint_runs_in_a_shell(tiltfile):
    result = tiltfile("""
        load('ext://restart_process', 'docker_build_with_restart')
        docker_build_with_restart('app', '.', entrypoint='python app.py',
                                  live_update=[sync('.', '/app')], restart_file='/tmp/x',
                                  exit_policy='continue')
    """, DOCKERFILE)
    assert images(result)["app"].entrypoint == ("sh", "-c", "python app.py")


def test_custom_build_with_restart_builds_a_wrapped_image_on_the_custom_one(tiltfile):
    result = tiltfile("""
        load('ext://restart_process', 'custom_build_with_restart')
        custom_build_with_restart('app', 'docker build -t $EXPECTED_REF .', deps=['.'],
                                  entrypoint=['python', 'app.py'],
                                  live_update=[sync('.', '/app')])
    """, DOCKERFILE)
    found = images(result)
    base = found["app-tilt_docker_build_with_restart_base"]
    assert isinstance(base, p.CustomBuild)
    wrapped = found["app"]
    assert isinstance(wrapped, p.DockerBuild)
    assert wrapped.dockerfile_contents == "FROM app-tilt_docker_build_with_restart_base\n"
    assert wrapped.image_deps == ("app-tilt_docker_build_with_restart_base",)
    assert wrapped.live_update[-1] == p.RestartContainerStep()


def test_restart_container_in_its_live_update_is_refused(tiltfile):
    with pytest.raises(TiltfileError, match="already restarts the process"):
        tiltfile("""
            load('ext://restart_process', 'docker_build_with_restart')
            docker_build_with_restart('app', '.', entrypoint=['python', 'app.py'],
                                      live_update=[sync('.', '/app'), restart_container()])
        """, DOCKERFILE)


def test_an_override_directory_still_comes_first(tiltfile, tmp_path, monkeypatch):
    override = tmp_path / "ext" / "restart_process"
    override.mkdir(parents=True)
    (override / "Tiltfile").write_text("def docker_build_with_restart(*a, **k):\n"
                                       "    fail('the override ran')\n")
    monkeypatch.setenv("DEVLOOP_EXTENSIONS_DIR", str(tmp_path / "ext"))
    with pytest.raises(TiltfileError, match="the override ran"):
        tiltfile("""
            load('ext://restart_process', 'docker_build_with_restart')
            docker_build_with_restart('app', '.', entrypoint='x', live_update=[])
        """, DOCKERFILE)
