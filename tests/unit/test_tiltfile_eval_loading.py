"""load, include and load_dynamic run when they execute: computed paths, each file once,
reruns that never repeat a command, and errors at the real file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.tiltfile.errors import TiltfileError
from devloop.tiltfile.evaluator import evaluate


def test_include_with_a_path_computed_in_a_loop(tiltfile) -> None:
    result = tiltfile("""
        for name in sorted(listdir("tilt.d")):
            include(name)
        print("main")
    """, files={"tilt.d/a.tiltfile": 'print("a")\n', "tilt.d/b.tiltfile": 'print("b")\n'})
    assert result.output == ("a", "b", "main")


def test_files_next_to_an_included_file_that_are_not_starlark_do_not_matter(tiltfile) -> None:
    result = tiltfile('include("lib/" + "Tiltfile")\n', files={
        "lib/Tiltfile": 'print("lib")\n', "lib/.gitignore": "tilt\n",
        "lib/notes.star": "undefined_name\n"})
    assert result.output == ("lib",)


def test_include_in_a_loop_that_never_runs_is_not_an_error(tiltfile) -> None:
    result = tiltfile("""
        for name in []:
            include(name)
        if False:
            include("nothere/Tiltfile")
        print("ok")
    """)
    assert result.output == ("ok",)


def test_load_dynamic_with_a_computed_path_returns_all_its_globals(tiltfile) -> None:
    result = tiltfile("""
        name = "li" + "b.star"
        m = load_dynamic(name)
        print(m["value"], sorted(m.keys()))
    """, files={"lib.star": "value = 41 + 1\n_private = 1\n"})
    assert result.output == ('42 ["_private", "value"]',)


def test_included_file_that_is_not_starlark_fails_at_its_own_line(tiltfile, tmp_path) -> None:
    with pytest.raises(TiltfileError) as info:
        tiltfile('include("sub" + "/Tiltfile")\n', files={"sub/Tiltfile": "x = 1\ny = (\n"})
    assert info.value.location.path == str(tmp_path / "sub" / "Tiltfile")
    assert info.value.message.startswith("syntax error")


def test_a_file_included_at_run_time_runs_once(tiltfile) -> None:
    result = tiltfile("""
        for i in range(3):
            include("lib" + ".star")
        load("lib.star", "x")
        print(x)
    """, files={"lib.star": 'print("lib ran")\nx = 1\n'})
    assert result.output == ("lib ran", "1")


def test_local_before_a_run_time_include_runs_once(tiltfile, tmp_path) -> None:
    counter = tmp_path / "count"
    result = tiltfile(f"""
        local("echo run >> {counter}", quiet=True)
        include("sub/" + "Tiltfile")
        print(str(local("wc -l < {counter}", echo_off=True, quiet=True)).strip())
    """, files={"sub/Tiltfile": 'print("sub")\n'})
    assert result.output[-2:] == ("sub", "1")
    assert counter.read_text() == "run\n"


def test_printed_lines_stream_once_across_reruns(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "Tiltfile").write_text('print("sub")\n')
    (tmp_path / "Tiltfile").write_text('print("first")\ninclude("su" + "b")\nprint("last")\n')
    streamed: list[str] = []
    result = evaluate(str(tmp_path / "Tiltfile"), on_output=streamed.append)
    assert streamed == ["first", "sub", "last"] == list(result.output)


def test_include_resolves_against_the_running_file(tiltfile) -> None:
    result = tiltfile('include("a/Tiltfile")\n', files={
        "a/Tiltfile": 'd = "b"\ninclude(d + "/Tiltfile")\n',
        "a/b/Tiltfile": 'print("a/b ran")\n'})
    assert result.output == ("a/b ran",)


def test_run_time_include_of_a_missing_file_names_the_call(tiltfile) -> None:
    with pytest.raises(TiltfileError) as info:
        tiltfile('x = 1\nname = "gone"\ninclude(name)\n')
    assert info.value.location.line == 3 and info.value.location.column == 8
    assert "include: file not found" in info.value.message


def test_include_of_a_non_string_is_a_clear_error(tiltfile) -> None:
    with pytest.raises(TiltfileError) as info:
        tiltfile("include(3)\n")
    assert info.value.message == "include: for parameter 'path': got int, want string"
    assert info.value.location.line == 1


def test_load_cycle_names_the_files(tiltfile, tmp_path) -> None:
    with pytest.raises(TiltfileError) as info:
        tiltfile('load("a.star", "a")\n', files={"a.star": 'load("b.star", "b")\na = 1\n',
                                                 "b.star": 'load("a.star", "a")\nb = 1\n'})
    assert info.value.message == (f"cycle in load graph: {tmp_path / 'a.star'} -> "
                                  f"{tmp_path / 'b.star'} -> {tmp_path / 'a.star'}")
    assert info.value.location.path == str(tmp_path / "b.star")


def test_files_read_include_run_time_includes_and_missing_ones(tiltfile, tmp_path) -> None:
    result = tiltfile("""
        include("sub/" + "Tiltfile")
        if os.path.exists("later/Tiltfile"):
            include("later/Tiltfile")
    """, files={"sub/Tiltfile": "x = 1\n"})
    assert str(tmp_path / "sub" / "Tiltfile") in result.plan.config_files


def test_syntax_check_never_runs_the_program(tiltfile, tmp_path) -> None:
    # A long loop of universal builtins only: before, it ran inside the syntax check.
    with pytest.raises(TiltfileError) as info:
        tiltfile('fail("reached at run time")\nfor i in range(10):\n    print(i)\n')
    assert info.value.message == "reached at run time"


def test_syntax_error_at_end_of_file_points_at_the_end(tiltfile) -> None:
    with pytest.raises(TiltfileError) as info:
        tiltfile("x = [\n  1,\n")
    assert info.value.location.line == 3


def test_undefined_name_in_a_file_that_never_runs_is_not_an_error(tiltfile) -> None:
    result = tiltfile('if False:\n    include("bad.star")\nprint("ok")\n',
                      files={"bad.star": "x = undefined_name\n"})
    assert result.output == ("ok",)


def test_undefined_name_in_a_loaded_file_fails_at_that_name(tiltfile, tmp_path) -> None:
    with pytest.raises(TiltfileError) as info:
        tiltfile('print("before")\nload("bad.star", "x")\n',
                 files={"bad.star": "\nx = undefined_name\n"})
    assert str(info.value) == f"{tmp_path / 'bad.star'}:2:5: undefined: undefined_name"


def test_a_directory_of_extensionless_files_included_in_a_loop_needs_few_runs(
        tiltfile, tmp_path) -> None:
    files = {f"tilt.d/svc{i:02}": f'print("svc{i:02}")\n' for i in range(60)}
    files["tilt.d/README"] = "this is not starlark\n"
    result = tiltfile("""
        for name in sorted(listdir("tilt.d")):
            if not name.endswith("README"):
                include(name)
    """, files=files)
    assert result.output == tuple(f"svc{i:02}" for i in range(60))
