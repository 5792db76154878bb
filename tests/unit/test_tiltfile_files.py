"""Reading files, encoding data, and the os / os.path / sys / shlex modules."""

from __future__ import annotations

import os

import pytest

from devloop.tiltfile.errors import TiltfileError


def error_of(tiltfile, text, **kwargs) -> TiltfileError:
    with pytest.raises(TiltfileError) as info:
        tiltfile(text, **kwargs)
    return info.value


# ---------------------------------------------------------------------------- reading files


def test_read_file_returns_a_blob_relative_to_the_calling_file_and_records_it(tiltfile, tmp_path):
    result = tiltfile("""
        b = read_file("conf/app.txt")
        print(type(b), str(b).strip())
        load("lib/helper.star", "inner")
        print(inner)
    """, files={"conf/app.txt": "hello\n", "lib/helper.star": 'inner = str(read_file("x.txt"))\n',
                "lib/x.txt": "from lib"})
    assert result.output == ("blob hello", "from lib")
    assert str(tmp_path / "conf/app.txt") in result.plan.config_files
    assert str(tmp_path / "lib/x.txt") in result.plan.config_files


def test_read_file_default_is_used_for_a_missing_file_which_is_still_watched(tiltfile, tmp_path):
    result = tiltfile("""
        print(str(read_file("absent.txt", default="fallback")), type(read_file("absent.txt", "")))
    """)
    assert result.output == ("fallback blob",)
    assert str(tmp_path / "absent.txt") in result.plan.config_files


@pytest.mark.parametrize("text, message", [
    ('read_file("absent.txt")', "read_file: file not found: "),
    ('read_file("absent.txt", default=3)', "for parameter 'default': got int, want string"),
    ('read_file(3)', "read_file: for parameter 'paths': got int, want string"),
    ('read_file("sub")', "is a directory, want a file"),
    ('read_file("a.txt", bogus=1)', "unexpected keyword argument 'bogus'"),
    ('read_json("absent.json")', "read_json: file not found: "),
    ('read_json("bad.json")', "read_json: error parsing JSON from bad.json"),
    ('read_yaml("absent.yaml")', "read_yaml: file not found: "),
    ('read_yaml("bad.yaml")', "read_yaml: error parsing YAML from bad.yaml"),
    ('read_yaml("stream.yaml")', "expected a yaml document but found a yaml stream"),
    ('read_yaml_stream("absent.yaml")', "read_yaml_stream: file not found"),
    ('read_yaml_stream("absent.yaml", default="x")', "for parameter 'default': got string, want"),
])
def test_reading_errors_name_the_builtin_and_the_line(tiltfile, text, message):
    error = error_of(tiltfile, "x = 1\n" + text + "\n", files={
        "a.txt": "a", "sub/keep": "", "bad.json": "{nope", "bad.yaml": "a: [1\n",
        "stream.yaml": "a: 1\n---\nb: 2\n"})
    assert message in str(error)
    assert error.location is not None and error.location.line == 2


def test_read_json_and_read_yaml_parse_and_default(tiltfile):
    result = tiltfile("""
        print(read_json("c.json"))
        print(read_json("absent.json", default={"d": 1}))
        print(read_yaml("c.yaml"))
        print(read_yaml("absent.yaml", default=None), read_yaml("empty.yaml"))
        print(read_yaml_stream("s.yaml"), read_yaml_stream("absent.yaml", default=[1]))
    """, files={"c.json": '{"port": 8080, "ratio": 0.5, "on": true, "none": null}',
                "c.yaml": "name: web\nreplicas: 3\ndate: 2024-01-02\nenabled: yes\n",
                "empty.yaml": "", "s.yaml": "a: 1\n---\n---\nb: [x]\n"})
    assert result.output == (
        '{"port": 8080, "ratio": 0.5, "on": True, "none": None}',
        '{"d": 1}',
        '{"name": "web", "replicas": 3, "date": "2024-01-02", "enabled": True}',
        "None None",
        '[{"a": 1}, {"b": ["x"]}] [1]',
    )


def test_missing_files_read_with_a_default_are_recorded(tiltfile, tmp_path):
    result = tiltfile("""
        read_json("j.json", default={})
        read_yaml("y.yaml", default={})
        read_yaml_stream("s.yaml", default=[])
    """)
    for name in ("j.json", "y.yaml", "s.yaml"):
        assert str(tmp_path / name) in result.plan.config_files


# ---------------------------------------------------------------------------- encoding


def test_decode_accepts_strings_and_blobs(tiltfile):
    result = tiltfile("""
        print(decode_json('{"a": [1, "x"]}'), decode_json(blob("[true]")))
        print(decode_yaml("k: v"), decode_yaml(blob("- 1\\n- 2")), decode_yaml(""))
        print(decode_yaml_stream("a: 1\\n---\\nb: 2\\n"), decode_yaml_stream(""))
    """)
    assert result.output == ('{"a": [1, "x"]} [True]', '{"k": "v"} [1, 2] None',
                             '[{"a": 1}, {"b": 2}] []')


@pytest.mark.parametrize("text, message", [
    ("decode_json(3)", "decode_json: for parameter 'json': got int, want string or blob"),
    ("decode_json('{')", "decode_json: error parsing JSON"),
    ("decode_yaml('a: 1\\n---\\nb: 2')", "decode_yaml: expected a yaml document but found"),
    ("decode_yaml('a: [')", "decode_yaml: error parsing YAML"),
    ("decode_yaml_stream(None)", "for parameter 'yaml': got NoneType"),
    ("encode_yaml({1: 'x'})", "only string keys are supported in maps. found key 1 of type int"),
    ("encode_json(blob('x'))", "encode_json: error converting object from starlark: unable to "
                               "convert from starlark value, unsupported type blob"),
    ("encode_json(struct(a=1))", "unsupported type struct"),
    ("encode_yaml({'a': set([1])})", "unsupported type set"),
    ("encode_yaml_stream({'a': 1})", "encode_yaml_stream: for parameter 'objs': got dict"),
    ("blob(3)", "blob: for parameter 'input': got int, want string"),
])
def test_encoding_errors(tiltfile, text, message):
    error = error_of(tiltfile, text + "\n")
    assert message in str(error)
    assert error.location is not None and error.location.line == 1


def test_encode_yaml_is_sorted_block_yaml_in_a_blob(tiltfile):
    result = tiltfile("""
        y = encode_yaml({"key2": {"key4": True, "key3": "bar"}, "key1": "foo", "key5": 3,
                         "key6": ["foo", 7], "key7": None, "key8": (1, 2)})
        print(type(y))
        print(str(y))
    """)
    assert result.output[0] == "blob"
    assert result.output[1] == ("key1: foo\nkey2:\n  key3: bar\n  key4: true\nkey5: 3\n"
                                "key6:\n- foo\n- 7\nkey7: null\nkey8:\n- 1\n- 2\n")


def test_encode_yaml_stream_joins_documents_and_round_trips(tiltfile):
    result = tiltfile("""
        s = encode_yaml_stream([{"a": 1}, ["x"], "text\\nlines"])
        print(str(s))
        print(decode_yaml_stream(s))
    """)
    assert result.output == ("a: 1\n---\n- x\n---\n|-\n  text\n  lines\n",
                             '[{"a": 1}, ["x"], "text\\nlines"]')


def test_encode_json_is_an_indented_string_with_sorted_keys(tiltfile):
    result = tiltfile("""
        j = encode_json({"b": [1, 2.5], "a": {"z": None, "y": False}})
        print(type(j))
        print(j)
        print(decode_json(j)["b"][1])
    """)
    assert result.output == (
        "string",
        '{\n  "a": {\n    "y": false,\n    "z": null\n  },\n  "b": [\n    1,\n    2.5\n  ]\n}\n',
        "2.5")


# ---------------------------------------------------------------------------- listdir, watch


def test_listdir_lists_files_only_and_recursive_descends(tiltfile, tmp_path):
    result = tiltfile("""
        print([os.path.basename(f) for f in listdir("d")])
        print([os.path.relpath(f, os.getcwd()) for f in listdir("d", recursive=True)])
        print(listdir("absent"))
    """, files={"d/b.txt": "", "d/a.txt": "", "d/sub/c.txt": ""})
    assert result.output == ('["a.txt", "b.txt"]', '["d/a.txt", "d/b.txt", "d/sub/c.txt"]', "[]")
    assert str(tmp_path / "d") in result.plan.config_files


@pytest.mark.parametrize("text, message", [
    ("listdir(3)", "listdir: for parameter 'dir': got int, want string"),
    ("listdir('d', recursive='yes')", "listdir: for parameter 'recursive': got string, want bool"),
    ("watch_file()", "missing 1 required positional argument: 'paths'"),
    ("watch_file(1)", "watch_file: for parameter 'paths': got int, want string"),
])
def test_listdir_and_watch_file_errors(tiltfile, text, message):
    assert message in str(error_of(tiltfile, text + "\n"))


def test_watch_file_records_without_reading(tiltfile, tmp_path):
    result = tiltfile('watch_file("later.cfg")\nwatch_file("dir/")\n')
    assert str(tmp_path / "later.cfg") in result.plan.config_files
    assert str(tmp_path / "dir") in result.plan.config_files


# ---------------------------------------------------------------------------- os, sys, shlex


def test_os_path_functions_follow_go_filepath(tiltfile, tmp_path):
    result = tiltfile("""
        print(os.path.join("a/", "../b", "", "c"), os.path.join("/x", "y/"), os.path.join())
        print(os.path.basename("a/b/"), os.path.basename(""), os.path.dirname("a"),
              os.path.dirname("/a/b/"), os.path.splitext("x/app.tar.gz"))
        print(os.path.relpath("/code/foo/bar", "/code/foo"), os.path.relpath("/code/foo",
              "/code/baz"), os.path.relpath(os.getcwd() + "/k/l"))
        print(os.name, os.path.sep)
    """)
    assert result.output == ('b/c /x/y ', 'b . . /a/b ("x/app.tar", ".gz")', "bar ../foo k/l",
                             "posix /")


def test_os_paths_resolve_against_the_main_tiltfile_directory(tiltfile):
    result = tiltfile("""
        print(os.getcwd() == config.main_dir, os.path.abspath("x/../y") == config.main_dir + "/y")
        print(os.path.exists("sub/lib.star"), os.path.exists("nope"), os.path.isdir("sub"),
              os.path.isfile("sub"))
    """, files={"sub/lib.star": "x = 1\n"})
    assert result.output == ("True True", "True False True False")


def test_os_paths_at_a_loaded_files_top_level_resolve_against_that_file(tiltfile):
    result = tiltfile("""
        load("sub/lib.star", "where", "cwd")
        print(where[0] == config.main_dir + "/sub", where[1], cwd() == config.main_dir)
    """, files={"sub/lib.star": """
        where = (os.getcwd(), os.path.exists("lib.star"))
        def cwd():
            return os.getcwd()
    """})
    assert result.output == ("True True True",)


def test_os_path_realpath_resolves_symlinks(tiltfile, tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    result = tiltfile('print(os.path.realpath("link") == os.path.realpath(config.main_dir + '
                      '"/real"))\n')
    assert result.output == ("True",)


@pytest.mark.parametrize("text, message", [
    ("os.path.relpath('rel/path')", "os.path.relpath: Rel: can't make rel/path relative to"),
    ("os.path.relpath('/code/foo', 'other/path')", "can't make /code/foo relative to other/path"),
    ("os.path.realpath('nope')", "os.path.realpath: lstat "),
    ("os.path.join('a', 1)", "os.path.join: only accepts strings. Argument #1: got int"),
    ("os.path.basename(3)", "os.path.basename: for parameter 'path': got int, want string"),
    ("os.path.exists()", "missing 1 required positional argument: 'path'"),
    ("os.getcwd(1)", "takes 1 positional argument but 2 were given"),
    ("shlex.quote(1)", "shlex.quote: for parameter 's': got int, want string"),
])
def test_os_errors(tiltfile, text, message):
    error = error_of(tiltfile, "x = 1\n" + text + "\n")
    assert message in str(error)
    assert error.location is not None and error.location.line == 2


def test_sys_and_shlex(tiltfile):
    result = tiltfile("""
        print(type(sys.argv), len(sys.executable) > 0)
        print(shlex.quote("it's here"), shlex.quote("plain-word"), shlex.quote(""))
    """)
    assert result.output == ("list True", "'it'\"'\"'s here' plain-word ''")


def test_environ_edits_are_seen_by_getenv(tiltfile):
    result = tiltfile("""
        os.environ["DEVLOOP_T_X"] = "y"
        os.putenv("DEVLOOP_T_Z", "z")
        print(os.getenv("DEVLOOP_T_X"), os.environ.get("DEVLOOP_T_Z"), os.getenv("NOPE_", "d"))
    """)
    assert result.output == ("y z d",)
