"""Values a loaded file exports are frozen, as in Tilt, and running loaded files first (each
in a program of its own, which is what freezes them) changes nothing else: order of
output, os.environ, callbacks, errors at the right file:line, load cycles."""

from __future__ import annotations

import pytest

from devloop.tiltfile.errors import TiltfileError


def _error(tiltfile, main: str, files: dict[str, str]) -> TiltfileError:
    with pytest.raises(TiltfileError) as info:
        tiltfile(main, files=files)
    return info.value


def test_a_loaded_list_is_frozen(tiltfile, tmp_path) -> None:
    error = _error(tiltfile, 'load("./lib.star", "L")\nL.append(3)\n',
                   {"lib.star": "L = [1, 2]\n"})
    assert error.message == "append: cannot append to frozen list"
    assert (error.location.path, error.location.line) == (str(tmp_path / "Tiltfile"), 2)


def test_a_dict_inside_a_loaded_dict_is_frozen_too(tiltfile) -> None:
    error = _error(tiltfile, 'load("./lib.star", "d")\nd["k"]["x"] = 1\n',
                   {"lib.star": 'd = {"k": {}}\n'})
    assert "frozen" in error.message


def test_a_loaded_function_cannot_change_its_module_after_the_load(tiltfile, tmp_path) -> None:
    error = _error(tiltfile, 'load("./lib.star", "add")\nadd(3)\n',
                   {"lib.star": "L = []\ndef add(x):\n    L.append(x)\n"})
    assert "frozen" in error.message
    assert error.location.path == str(tmp_path / "lib.star")


def test_load_dynamic_of_a_loaded_file_returns_the_same_frozen_values(tiltfile) -> None:
    error = _error(tiltfile, 'load("./lib.star", "a")\nm = load_dynamic("./lib.star")\n'
                   'm["a"].append(2)\n', {"lib.star": "a = [1]\n"})
    assert "frozen" in error.message


def test_a_copy_of_a_loaded_value_is_the_caller_s_own(tiltfile) -> None:
    result = tiltfile('load("./lib.star", "L")\nmine = list(L)\nmine.append(3)\nprint(mine)\n',
                      files={"lib.star": "L = [1, 2]\n"})
    assert result.output == ("[1, 2, 3]",)


def test_files_run_in_the_order_tilt_runs_them_and_each_once(tiltfile) -> None:
    result = tiltfile("""
        load("./a.star", "a")
        load("./b.star", "b")
        print("main", a, b)
    """, files={"a.star": 'load("./c.star", "c")\nprint("a")\na = c + 1\n',
                "b.star": 'load("./c.star", "c")\nprint("b")\nb = c + 2\n',
                "c.star": 'print("c")\nc = 10\n'})
    assert result.output == ("c", "a", "b", "main 11 12")


def test_os_environ_set_by_a_loaded_file_is_seen_after_it(tiltfile) -> None:
    result = tiltfile('load("./a.star", "a")\nprint(os.getenv("FOO"))\n',
                      files={"a.star": 'os.putenv("FOO", "1")\na = 1\n'})
    assert result.output == ("1",)
    assert dict(result.plan.environ) == {"FOO": "1"}


def test_a_loaded_file_s_own_names_are_not_the_main_file_s(tiltfile) -> None:
    error = _error(tiltfile, 'load("./a.star", "a")\nprint(helper())\n',
                   {"a.star": "def helper():\n    return 1\na = 1\n"})
    assert error.message == "undefined: helper"


def test_a_callback_registered_by_a_loaded_file_is_used(tiltfile) -> None:
    deployment = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
                  "  selector: {matchLabels: {app: web}}\n  template:\n"
                  "    metadata: {labels: {app: web}}\n"
                  "    spec: {containers: [{name: c, image: busybox}]}\n")
    result = tiltfile('load("./a.star", "a")\nk8s_yaml("web.yaml")\n', files={
        "web.yaml": deployment,
        "a.star": 'def f(id):\n    return "x-" + id.name\n'
                  "workload_to_resource_function(f)\na = 1\n"})
    assert [r.name for r in result.plan.resources] == ["x-web"]


def test_an_error_in_a_loaded_file_points_at_that_file(tiltfile, tmp_path) -> None:
    error = _error(tiltfile, 'load("./lib.star", "x")\n', {"lib.star": "a = 1\nx = a + 'b'\n"})
    assert (error.location.path, error.location.line) == (str(tmp_path / "lib.star"), 2)


def test_a_recursive_closure_in_a_loaded_file_still_works(tiltfile) -> None:
    # The bundled starlark-go cannot freeze a closure that holds itself: such a file's
    # values stay mutable rather than the evaluation crashing.
    result = tiltfile('load("./lib.star", "R")\nprint(R(3))\n', files={"lib.star": (
        "def make():\n    def r(n):\n        return r(n - 1) if n else 0\n    return r\n"
        "R = make()\n")})
    assert result.output == ("0",)


def test_a_load_cycle_is_still_named(tiltfile) -> None:
    error = _error(tiltfile, 'load("./a.star", "a")\n', {
        "a.star": 'load("./b.star", "b")\na = 1\n', "b.star": 'load("./a.star", "a")\nb = 1\n'})
    assert error.message.startswith("cycle in load graph")


def test_a_file_loaded_after_other_statements_runs_where_it_stands(tiltfile) -> None:
    result = tiltfile('os.putenv("MODE", "dev")\nload("./a.star", "a")\nprint(a)\n',
                      files={"a.star": 'a = os.getenv("MODE")\n'})
    assert result.output == ("dev",)
