"""The Starlark dialect and module system every Tiltfile relies on."""

from __future__ import annotations

import pytest

from devloop.tiltfile.errors import TiltfileError


def test_struct_fields_and_getattr_default(tiltfile):
    result = tiltfile("""
        s = struct(a=1, b="x")
        print(s.a, s.b, type(s), getattr(s, "zz", "dflt"), hasattr(s, "a"), hasattr(s, "q"))
    """)
    assert result.output == ("1 x struct dflt True False",)


def test_load_of_local_file_with_functions_calling_later_definitions(tiltfile):
    result = tiltfile("""
        load("./lib/helpers.star", "add_one", big="BIG")
        print(add_one(1), big)
    """, files={"lib/helpers.star": """
        def add_one(v):
            return helper(v) + 1
        def helper(v):
            return v
        if True:
            BIG = "yes"
    """})
    assert result.output == ("2 yes",)


def test_chained_relative_loads_resolve_against_the_loading_file(tiltfile):
    result = tiltfile("""
        load("a/one.star", "value")
        print(value)
    """, files={"a/one.star": 'load("../b/two.star", "base")\nvalue = base + 1\n',
                "b/two.star": "base = 41\n"})
    assert result.output == ("42",)


def test_a_module_loaded_twice_runs_once(tiltfile):
    result = tiltfile("""
        load("lib.star", "x")
        load("other.star", "y")
        print(x, y)
    """, files={"lib.star": 'print("lib ran")\nx = 1\n',
                "other.star": 'load("lib.star", "x")\ny = x + 1\n'})
    assert result.output == ("lib ran", "1 2")


def test_include_runs_a_file_without_importing_names(tiltfile):
    result = tiltfile("""
        include("sub/Tiltfile")
        print("main")
    """, files={"sub/Tiltfile": 'print("sub")\n'})
    assert result.output == ("sub", "main")


def test_load_dynamic_returns_the_module_symbols(tiltfile):
    result = tiltfile("""
        symbols = load_dynamic("lib.star")
        print(symbols["v"])
    """, files={"lib.star": "v = 'dyn'\n_private = 1\n"})
    assert result.output == ("dyn",)


def test_multiline_strings_in_loaded_files_keep_their_content(tiltfile):
    result = tiltfile("""
        load("lib.star", "TEXT")
        print(TEXT)
    """, files={"lib.star": 'TEXT = """a\n  b\nc"""\n'})
    assert result.output == ("a\n  b\nc",)


def test_dialect_features_real_tiltfiles_use(tiltfile):
    result = tiltfile("""
        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)
        s = set([1, 2]) | set([3])
        print(fact(5), sorted(s - set([1])), "{} {{x}}".format(3), "%s-%d" % ("a", 2))
        f = lambda *a, **k: len(a) + len(k)
        print(f(1, 2, z=3), [x * 2 for x in range(3) if x], type(f))
        i = 0
        while i < 3:
            i += 1
        x = 1
        x = 2
        print(i, x, __file__.endswith("Tiltfile"))
    """)
    assert result.output == ("120 [2, 3] 3 {x} a-2", "3 [2, 4] function", "3 2 True")


def test_syntax_error_names_file_line_and_column(tiltfile):
    with pytest.raises(TiltfileError) as info:
        tiltfile("x = 1\nprint(x\n")
    assert info.value.location is not None
    assert info.value.location.path.endswith("Tiltfile")
    assert info.value.location.line == 3
    assert "syntax error" in info.value.message


def test_undefined_name_in_loaded_file_points_at_that_file(tiltfile):
    with pytest.raises(TiltfileError) as info:
        tiltfile('load("lib.star", "f")\nf()\n', files={"lib.star": "def f():\n  return nope\n"})
    assert info.value.location.path.endswith("lib.star")
    assert info.value.location.line == 2
    assert "nope" in info.value.message


def test_runtime_error_reports_user_frames(tiltfile):
    with pytest.raises(TiltfileError) as info:
        tiltfile('load("lib.star", "f")\n\nf(1)\n',
                 files={"lib.star": "def f(v):\n  fail('bad %d' % v)\n"})
    error = info.value
    assert error.message == "bad 1"
    assert [(loc.path.rsplit("/", 1)[-1], loc.line) for loc in error.backtrace] == [
        ("Tiltfile", 3), ("lib.star", 2)]


def test_loading_a_missing_symbol_is_an_error(tiltfile):
    with pytest.raises(TiltfileError) as info:
        tiltfile('load("lib.star", "missing")\n', files={"lib.star": "x = 1\n"})
    assert "missing" in info.value.message


def test_loading_a_missing_file_names_the_load(tiltfile):
    with pytest.raises(TiltfileError) as info:
        tiltfile('x = 1\nload("nothere.star", "a")\n')
    assert info.value.location.line == 2
    assert "nothere.star" in info.value.message


def test_load_cycle_is_reported(tiltfile):
    with pytest.raises(TiltfileError) as info:
        tiltfile('load("a.star", "a")\n', files={"a.star": 'load("b.star", "b")\na = 1\n',
                                                 "b.star": 'load("a.star", "a")\nb = 1\n'})
    assert "cycle" in info.value.message


def test_extension_loaded_from_a_local_repository_directory(tiltfile, tmp_path, monkeypatch):
    repo = tmp_path / "extrepo"
    (repo / "hello").mkdir(parents=True)
    (repo / "hello" / "Tiltfile").write_text("def hello(n):\n  return 'hi ' + n\n")
    monkeypatch.setenv("DEVLOOP_EXTENSIONS_REPO", "file://" + str(repo))
    result = tiltfile('load("ext://hello", "hello")\nprint(hello("x"))\n')
    assert result.output == ("hi x",)


def test_unreachable_extension_repository_is_a_clear_error(tiltfile, tmp_path, monkeypatch):
    monkeypatch.setenv("DEVLOOP_EXTENSIONS_REPO", str(tmp_path / "no-such-repo.git"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(TiltfileError) as info:
        tiltfile('load("ext://hello", "hello")\n')
    assert "cannot fetch extension repository" in info.value.message


def test_include_of_a_missing_file_fails_at_the_include_call(tiltfile):
    with pytest.raises(TiltfileError) as info:
        tiltfile('x = 1\n\ninclude("nothere/Tiltfile")\n')
    assert info.value.location.line == 3
    assert info.value.location.path.endswith("Tiltfile")
    assert "include: file not found" in info.value.message


def test_print_shows_blob_text_and_struct_fields(tiltfile):
    result = tiltfile('print(blob("hello"), struct(a=1, b="x"), 3, sep=" | ")\n')
    assert result.output == ('hello | struct(a = 1, b = "x") | 3',)


def test_len_of_a_struct_is_an_error_as_in_tilt_and_a_blob_has_its_text_length(tiltfile):
    result = tiltfile('print(len(blob("abc")), len([1, 2]), len({"a": 1}), len("xy"))\n')
    assert result.output == ("3 2 1 2",)
    with pytest.raises(TiltfileError) as info:
        tiltfile("s = struct(a=1)\nn = len(s)\n")
    assert str(info.value).endswith("Tiltfile:2:8: len: value of type struct has no len")


def test_missing_attribute_error_has_no_internal_prefix(tiltfile):
    with pytest.raises(TiltfileError) as info:
        tiltfile('x = 1\ny = "abc".zz\n')
    assert info.value.message == "string has no .zz field or method"
    assert (info.value.location.line, info.value.location.column) == (2, 10)
    with pytest.raises(TiltfileError) as info:
        tiltfile('y = getattr("abc", "zz")\n')
    assert info.value.message == "getattr: string has no .zz field or method"


def test_print_with_a_non_string_separator_names_the_parameter(tiltfile):
    with pytest.raises(TiltfileError) as info:
        tiltfile("print(1, sep=2)\n")
    assert info.value.message == "print: for parameter sep: got int, want string"


def test_a_user_dict_with_the_old_marker_key_is_just_a_dict(tiltfile):
    result = tiltfile("""
        d = {"__dl_type__": "struct", "a": 1}
        print(type(d), len(d), sorted(d.keys()), hasattr(d, "a"), d["a"])
        print(str(d))
        e = decode_json('{"__dl_type__": "blob", "__text": "t"}')
        print(type(e), len(e))
    """)
    assert result.output == (
        'dict 2 ["__dl_type__", "a"] False 1',
        '{"__dl_type__": "struct", "a": 1}',
        "dict 2",
    )


def test_structs_hide_their_marker_from_every_view(tiltfile):
    result = tiltfile("""
        s = struct(a=1)
        print(dir(s), hasattr(s, "a"), type(s), s)
    """)
    assert result.output == ('["a"] True struct struct(a = 1)',)
    assert "__dl_type" not in result.output[0]


def test_assigning_to_a_struct_field_names_a_struct(tiltfile):
    with pytest.raises(TiltfileError) as info:
        tiltfile("s = struct(a=1)\ns.a = 2\n")
    assert info.value.message == "can't assign to .a field of struct"
    assert (info.value.location.line, info.value.location.column) == (2, 1)
    with pytest.raises(TiltfileError) as info:
        tiltfile("s = struct(a=struct(b=1))\nif True:\n    s.a.b += 1\n")
    assert info.value.message == "can't assign to .b field of struct"
    assert info.value.location.line == 3
    with pytest.raises(TiltfileError) as info:
        tiltfile("os.x = 1\n")
    assert info.value.message == "can't assign to .x field of module"


def test_assigning_to_a_field_of_other_values_fails_as_starlark_says(tiltfile):
    with pytest.raises(TiltfileError) as info:
        tiltfile("d = {}\nd.a = 1\n")
    assert info.value.message == "can't assign to .a field of dict"
    assert (info.value.location.line, info.value.location.column) == (2, 2)


def test_str_and_print_of_a_live_update_step_give_tilts_text(tiltfile, tmp_path):
    result = tiltfile("""
        s = sync('src', '/app')
        print(s)
        print(str(s).split("'")[3], str(run('make')), str(restart_container()))
        print(str(fall_back_on(['a.txt'])), str(initial_sync()))
    """)
    assert result.output == (
        f"sync step: '{tmp_path}/src'->'/app'",
        '/app run step: "make" restart_container step',
        f"fall_back_on step: [{tmp_path}/a.txt] initial_sync step",
    )
