"""Every builtin that reads a file whole goes through the capped reader: a device, a FIFO
or an oversized file is refused with an error at the calling line, instead of reading
forever (`/dev/zero`) or blocking (a FIFO with no writer)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from devloop.tiltfile.context import read_limited
from devloop.tiltfile.errors import BuiltinError, TiltfileError
from devloop.tiltfile.evaluator import Evaluation

REFUSED = "/dev/zero is not a regular file"


def _refused(tiltfile: Callable[..., Evaluation], text: str, line: int,
             files: dict[str, str] | None = None, device: str = "/dev/zero") -> TiltfileError:
    with pytest.raises(TiltfileError) as caught:
        tiltfile(text, files=files)
    error = caught.value
    assert f"{device} is not a regular file" in error.message, error.message
    assert error.location is not None and error.location.line == line, str(error)
    assert error.location.path.endswith("Tiltfile")
    return error


@pytest.mark.parametrize("builtin", ["read_file", "read_json", "read_yaml",
                                     "read_yaml_stream"])
def test_file_reading_builtins_refuse_a_device(tiltfile, builtin):
    error = _refused(tiltfile, f"print('start')\nx = {builtin}('/dev/zero')\n", 2)
    assert error.message.startswith(f"{builtin}: ")


def test_k8s_yaml_refuses_a_device(tiltfile):
    error = _refused(tiltfile, "\nk8s_yaml('/dev/zero')\n", 2)
    assert error.message.startswith("k8s_yaml: ")


def test_docker_build_refuses_a_device_as_dockerfile(tiltfile):
    error = _refused(tiltfile, "docker_build('app', '.',\n  dockerfile='/dev/zero')\n", 1)
    assert error.message.startswith("docker_build: dockerfile: ")


def test_docker_build_reads_a_dockerfile_that_is_not_utf8(tiltfile, tmp_path):
    (tmp_path / "Dockerfile").write_bytes(b"# caf\xe9\nFROM base\n")
    result = tiltfile("docker_build('base', '.', dockerfile_contents='FROM scratch')\n"
                      "docker_build('app', '.')\n")
    app = next(image for image in result.plan.images if image.ref == "app")
    assert app.image_deps == ("base",)


def test_the_config_file_refuses_a_device(tiltfile, tmp_path):
    (tmp_path / "tilt_config.json").symlink_to("/dev/zero")
    error = _refused(tiltfile, "config.define_string('a')\ncfg = config.parse()\n", 2,
                     device=str(tmp_path / "tilt_config.json"))
    assert error.message.startswith("config.parse: ")


@pytest.mark.parametrize("builtin", ["load", "include", "load_dynamic"])
def test_loading_a_device_is_refused(tiltfile, builtin):
    call = "load('/dev/zero', 'x')" if builtin == "load" else f"{builtin}('/dev/zero')"
    error = _refused(tiltfile, f"print(1)\n{call}\n", 2)
    assert error.message.startswith(f"{builtin}: ")


def test_a_kubeconfig_that_is_a_device_is_refused(tiltfile, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/dev/zero")
    error = _refused(tiltfile, "x = 1\nprint(k8s_context())\n", 2)
    assert error.message.startswith("k8s_context: kubeconfig: ")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tiltfile, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _refused(tiltfile, "x = read_file('pipe')\n", 1, device=str(fifo))
    _refused(tiltfile, "k8s_yaml('pipe')\n", 1, device=str(fifo))
    _refused(tiltfile, "include('pipe')\n", 1, device=str(fifo))


def test_the_capped_reader_refuses_large_and_non_utf8_files(tmp_path: Path):
    (tmp_path / "big").write_bytes(b"a" * 11)
    with pytest.raises(BuiltinError, match="larger than"):
        read_limited(str(tmp_path / "big"), 10)
    assert read_limited(str(tmp_path / "big"), 11) == "a" * 11
    (tmp_path / "latin").write_bytes(b"caf\xe9")
    with pytest.raises(BuiltinError, match="not UTF-8 text"):
        read_limited(str(tmp_path / "latin"))
    assert read_limited(str(tmp_path / "latin"), errors="replace") == "caf\ufffd"
    with pytest.raises(IsADirectoryError):
        read_limited(str(tmp_path))
