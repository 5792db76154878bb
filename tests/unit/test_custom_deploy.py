"""k8s_custom_deploy's contract with its apply_cmd: the image environment, stdout YAML."""

from __future__ import annotations

from devloop.engine.custom_deploy_runner import image_environment, run_capturing
from devloop.engine.runner import UpdateError
from devloop.model import plan as p


def test_image_environment_numbers_image_deps_like_tilt():
    env = image_environment(("api", "web"), {"api": "localhost:5000/api:devloop-1",
                                             "web": "localhost:5000/web:devloop-2"})
    assert env == {"TILT_IMAGE_0": "localhost:5000/api:devloop-1", "TILT_IMAGE_MAP_0": "api",
                   "TILT_IMAGE_1": "localhost:5000/web:devloop-2", "TILT_IMAGE_MAP_1": "web"}


async def test_apply_cmd_stdout_is_returned_and_stderr_logged():
    lines: list[str] = []
    spec = p.CommandSpec(("sh", "-c", "echo 'kind: ConfigMap'; echo progress >&2"), True)
    out = await run_capturing(spec, {"PATH": "/usr/bin:/bin"}, lines.append, "apply_cmd")
    assert out == "kind: ConfigMap\n"
    assert "progress" in lines


async def test_failing_apply_cmd_is_an_update_error():
    spec = p.CommandSpec(("sh", "-c", "exit 7"), True)
    try:
        await run_capturing(spec, {"PATH": "/usr/bin:/bin"}, lambda _: None, "apply_cmd")
    except UpdateError as exc:
        assert "exit code 7" in str(exc)
    else:
        raise AssertionError("no error")
