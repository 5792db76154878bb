"""Builtins and argument forms real Tiltfiles use that devloop lacked: warn, exit,
trigger_mode, test, Windows command forms, dir=None, default_registry(''), live update
checks over an image's dependency tree, and k8s_custom_deploy's live-update-only image."""

from __future__ import annotations

import re

import pytest

from devloop.model import plan as p
from devloop.tiltfile.context import EvalContext
from devloop.tiltfile.errors import BuiltinError, TiltfileError
from devloop.tiltfile.live_update import LiveUpdateSteps
from devloop.tiltfile.messages_area import EXIT_MESSAGE, MessagesArea, stopped_by_exit

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: app, image: app}]
"""


# ---------------------------------------------------------------------------- warn, exit


def test_warn_prints_a_warning_in_order_and_goes_on(tiltfile):
    result = tiltfile("""
        print('before')
        warn('disk almost full')
        print('after')
    """)
    assert result.output == ("before", "WARNING: disk almost full", "after")


def test_warn_wants_a_string(tiltfile):
    with pytest.raises(TiltfileError, match="warn: for parameter 'msg': got int"):
        tiltfile("warn(3)\n")


@pytest.mark.parametrize(("code", "printed"), [
    (None, []), ("goodbye", ["goodbye"]), (123, ["123"]),
    ({"foo": "bar", "baz": 123}, ['{"foo": "bar", "baz": 123}']), ("", [])])
def test_exit_prints_its_code_and_stops_with_a_marker_the_evaluator_recognises(code, printed):
    ctx = EvalContext(main_path="/nowhere/Tiltfile")
    area = MessagesArea(ctx)
    assert stopped_by_exit([area]) is None
    with pytest.raises(BuiltinError, match=re.escape(EXIT_MESSAGE)):
        area.exit({"A": "1"}, code)
    assert ctx.output == printed
    assert stopped_by_exit([object(), area]) == {"A": "1"}


def test_exit_ends_the_tiltfile_successfully_keeping_what_ran_before(tiltfile):
    result = tiltfile("""
        local_resource('before', 'true')
        os.putenv('SET_BEFORE_EXIT', 'yes')
        exit('stopping here')
        local_resource('after', 'true')
        print('never printed')
    """)
    assert [r.name for r in result.plan.resources] == ["before"]
    assert result.output == ("stopping here",)
    assert ("SET_BEFORE_EXIT", "yes") in result.plan.environ


def test_exit_in_a_loaded_file_stops_the_whole_tiltfile(tiltfile):
    result = tiltfile("""
        load('lib.star', 'x')
        local_resource('never', 'true')
    """, files={"lib.star": "x = 1\nlocal_resource('lib', 'true')\nexit()\n"})
    assert [r.name for r in result.plan.resources] == ["lib"]
    assert result.output == ()


def test_an_error_before_exit_is_still_an_error(tiltfile):
    with pytest.raises(TiltfileError, match="bang"):
        tiltfile("fail('bang')\nexit()\n")


# ---------------------------------------------------------------------------- trigger_mode


def test_trigger_mode_sets_the_default_of_resources_that_set_none(tiltfile):
    plan = tiltfile("""
        trigger_mode(TRIGGER_MODE_MANUAL)
        local_resource('default', 'true')
        local_resource('own', 'true', trigger_mode=TRIGGER_MODE_AUTO)
        k8s_yaml('app.yaml')
        k8s_yaml(blob('apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: c}\\n'))
        k8s_custom_deploy('cd', apply_cmd='true', delete_cmd='true', deps=[])
        k8s_resource('cd', trigger_mode=TRIGGER_MODE_AUTO)
    """, files={"app.yaml": DEPLOY}).plan
    modes = {r.name: r.trigger_mode for r in plan.resources}
    assert modes == {"default": p.TriggerMode.MANUAL, "own": p.TriggerMode.AUTO,
                     "app": p.TriggerMode.MANUAL, "uncategorized": p.TriggerMode.MANUAL,
                     "cd": p.TriggerMode.AUTO}
    assert plan.settings.default_trigger_mode is p.TriggerMode.MANUAL


def test_trigger_mode_once_and_only_a_mode(tiltfile):
    with pytest.raises(TiltfileError, match="trigger_mode can only be called once. It was "
                                            "already called at .*Tiltfile:1"):
        tiltfile("trigger_mode(TRIGGER_MODE_AUTO)\ntrigger_mode(TRIGGER_MODE_MANUAL)\n")
    with pytest.raises(TiltfileError, match="want TRIGGER_MODE_AUTO or TRIGGER_MODE_MANUAL"):
        tiltfile("trigger_mode(7)\n")


def test_without_trigger_mode_resources_are_automatic(tiltfile):
    plan = tiltfile("local_resource('a', 'true')\n").plan
    assert plan.resource("a").trigger_mode is p.TriggerMode.AUTO


# ---------------------------------------------------------------------------- argument forms


def test_test_is_local_resource(tiltfile):
    plan = tiltfile("test('unit', 'pytest', ['src'])\n").plan
    resource = plan.resource("unit")
    assert resource.type is p.ResourceType.LOCAL and resource.cmd is not None
    assert resource.cmd.argv == ("sh", "-c", "pytest")
    assert resource.deps and resource.deps[0].endswith("/src")


def test_windows_command_forms_take_a_list(tiltfile, tmp_path):
    result = tiltfile("""
        print(str(local('echo hi', command_bat=['cmd', '/c', 'echo hi'], quiet=True)).strip())
        local_resource('r', 'true', cmd_bat=['cmd', '/c', 'x'], serve_cmd='sleep 1',
                       serve_cmd_bat=['cmd', '/c', 'y'])
        custom_build('img', 'true', ['.'], command_bat=['cmd', '/c', 'z'])
    """)
    assert result.output[-1] == "hi"
    with pytest.raises(TiltfileError, match="local: for parameter 'command_bat': got int"):
        tiltfile("local('true', command_bat=3)\n")


def test_dir_none_means_the_tiltfile_directory(tiltfile, tmp_path):
    result = tiltfile("""
        print(str(local('pwd', dir=None, quiet=True)).strip())
        local_resource('r', 'true', dir=None, serve_cmd='sleep 1', serve_dir=None)
        custom_build('img', 'true', ['.'], dir=None)
    """)
    assert result.output[-1] == str(tmp_path)
    resource = result.plan.resource("r")
    assert resource.cmd is not None and resource.cmd.dir == str(tmp_path)
    assert resource.serve_cmd is not None and resource.serve_cmd.dir == str(tmp_path)


def test_default_registry_empty_is_a_no_op_and_a_later_call_still_sets_one(tiltfile):
    plan = tiltfile("default_registry('')\n").plan
    assert plan.settings.default_registry == ""
    plan = tiltfile("default_registry('')\ndefault_registry('localhost:5000')\n").plan
    assert plan.settings.default_registry == "localhost:5000"


# ---------------------------------------------------------------------------- live update


RESTART_LIKE = """
docker_build('app-base', 'app')
docker_build('app', 'helper', dockerfile_contents='FROM app-base\\nRUN true\\n',
             live_update=[sync('app/src', '/srv'), run('date > /tmp/.restart')])
k8s_yaml('app.yaml')
"""


def test_syncs_may_read_from_a_base_image_context(tiltfile, tmp_path):
    """restart_process' docker_build_with_restart: the user's context is the base image's,
    the live-updated image is built on top of it from another context."""
    plan = tiltfile(RESTART_LIKE, files={"app/Dockerfile": "FROM scratch\n",
                                         "app/src/main.py": "", "helper/x": "",
                                         "app.yaml": DEPLOY}).plan
    derived = plan.image("app")
    assert isinstance(derived, p.DockerBuild) and derived.image_deps == ("app-base",)
    assert [i.ref for i in plan.images_for(("app",))] == ["app-base", "app"]
    assert plan.resource("app").image_refs == ("app-base", "app")
    assert plan.warnings == ()


def test_a_sync_outside_the_whole_tree_fails_after_the_run(tiltfile):
    with pytest.raises(TiltfileError) as info:
        tiltfile("docker_build('app', 'app', live_update=[sync('elsewhere', '/srv')])\n"
                 "k8s_yaml('app.yaml')\n",
                 files={"app/Dockerfile": "FROM scratch\n", "app.yaml": DEPLOY})
    assert "docker_build('app'): live_update: sync step source" in info.value.message
    assert "elsewhere' is not a child of any watched filepaths" in info.value.message


def test_fall_back_on_outside_the_tree_fails_too(tiltfile):
    with pytest.raises(TiltfileError, match="fall_back_on paths '.*/other' is not a child"):
        tiltfile("docker_build('app', 'app', live_update=[fall_back_on('other'), "
                 "sync('app', '/srv')])\nk8s_yaml('app.yaml')\n",
                 files={"app/Dockerfile": "FROM scratch\n", "app.yaml": DEPLOY})


def test_an_image_no_resource_deploys_is_not_checked(tiltfile):
    plan = tiltfile("docker_build('app', 'app', live_update=[sync('elsewhere', '/srv')])\n",
                    files={"app/Dockerfile": "FROM scratch\n"}).plan
    assert plan.image("app").live_update


def test_build_args_and_stages_decide_image_deps(tiltfile):
    plan = tiltfile("""
        docker_build('base-a', 'a')
        docker_build('base-b', 'b')
        docker_build('app', 'app', build_args={'BASE': 'base-b'})
    """, files={"a/Dockerfile": "FROM scratch\n", "b/Dockerfile": "FROM scratch\n",
                "app/Dockerfile": "ARG BASE=base-a\nFROM ${BASE} AS build\n"
                                  "FROM build\nCOPY --from=base-a /x /x\n"}).plan
    app = plan.image("app")
    assert isinstance(app, p.DockerBuild) and app.image_deps == ("base-b", "base-a")


# ---------------------------------------------------------------------------- custom deploy


def test_k8s_custom_deploy_live_update_has_an_image_target(tiltfile, tmp_path):
    plan = tiltfile("""
        k8s_custom_deploy('by-image', 'true', 'true', deps=['src'], image_selector='my/app',
                          live_update=[sync('src', '/app')])
        k8s_custom_deploy('by-name', 'true', 'true', deps=['src'], container_selector='web',
                          live_update=[sync('src', '/app')])
    """, files={"src/a": ""}).plan
    targets = [i for i in plan.images if isinstance(i, p.LiveUpdateOnly)]
    assert [(t.ref, t.resource, t.container_selector) for t in targets] == [
        ("my/app", "by-image", ""), ("k8s_custom_deploy:by-name", "by-name", "web")]
    assert targets[0].live_update == (p.SyncStep(str(tmp_path / "src"), "/app"),)
    assert targets[0].deps == (str(tmp_path / "src"),)
    # Nothing builds it: no resource lists it among the images to build.
    assert plan.resource("by-image").image_refs == ()
    with pytest.raises(KeyError):
        plan.image("my/app")
    assert plan.warnings == ()


def test_k8s_custom_deploy_sync_outside_its_deps_fails(tiltfile):
    with pytest.raises(TiltfileError, match="live_update_only\\('my/app'\\): live_update: "
                                            "sync step source"):
        tiltfile("k8s_custom_deploy('x', 'true', 'true', deps=['src'], "
                 "image_selector='my/app', live_update=[sync('other', '/app')])\n",
                 files={"src/a": ""})


def test_custom_build_may_have_no_deps(tiltfile):
    plan = tiltfile("custom_build('img', 'make', [])\n").plan
    image = plan.image("img")
    assert isinstance(image, p.CustomBuild) and image.deps == ()


def test_live_update_steps_carry_tilts_string_form(tmp_path):
    """What str(step) gives in Tilt; extensions (file_sync_only) parse it."""
    ctx = EvalContext(main_path=str(tmp_path / "Tiltfile"))
    steps = LiveUpdateSteps(ctx)
    assert steps.sync("app", "/srv")["__str"] == f"sync step: '{tmp_path}/app'->'/srv'"
    assert steps.run("make x", trigger=["a"])["__str"] == \
        f'run step: "make x" (triggers: {tmp_path}/a)'
    assert steps.run(["make", "x"])["__str"] == 'run step: "make x"'
    assert steps.restart_container()["__str"] == "restart_container step"
    assert steps.initial_sync()["__str"] == "initial_sync step"
    assert steps.fall_back_on(["f"])["__str"] == f"fall_back_on step: [{tmp_path}/f]"
