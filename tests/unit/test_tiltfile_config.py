"""The config module: settings from Tiltfile args and tilt_config.json, enabled resources."""

from __future__ import annotations

import pytest

from devloop.tiltfile.config_area import ConfigArea
from devloop.tiltfile.context import EvalContext
from devloop.tiltfile.errors import BuiltinError, TiltfileError

DEFINITIONS = """
config.define_string("env", usage="environment name")
config.define_bool("debug")
config.define_string_list("services")
config.define_object("extra")
config.define_string_list("to-run", args=True)
cfg = config.parse()
print(sorted(cfg.items()))
"""


def error_of(tiltfile, text, **kwargs) -> TiltfileError:
    with pytest.raises(TiltfileError) as info:
        tiltfile(text, **kwargs)
    return info.value


@pytest.mark.parametrize("args, expected", [
    ((), "[]"),
    (("--env", "staging"), '[("env", "staging")]'),
    (("--env=prod",), '[("env", "prod")]'),
    (("--debug",), '[("debug", True)]'),
    (("--debug=False",), '[("debug", False)]'),
    (("--debug=0", "api"), '[("debug", False), ("to-run", ["api"])]'),
    (("--services", "a", "--services=b"), '[("services", ["a", "b"])]'),
    (("--extra", '{"k": [1, 2]}'), '[("extra", {"k": [1, 2]})]'),
    (("api", "--env", "dev", "web"), '[("env", "dev"), ("to-run", ["api", "web"])]'),
    (("--", "--env", "x"), '[("to-run", ["--env", "x"])]'),
    (("--env", "-"), '[("env", "-")]'),
])
def test_parse_reads_flags_and_positional_args(tiltfile, args, expected):
    assert tiltfile(DEFINITIONS, args=args).output == (expected,)


@pytest.mark.parametrize("args, message", [
    (("--nope",), "config.parse: unknown flag: --nope"),
    (("-e", "x"), "config.parse: unknown shorthand flag: 'e' in -e"),
    (("--env",), "config.parse: flag needs an argument: --env"),
    (("--env", "a", "--env", "b"), 'invalid argument "b" for "--env" flag: string settings can '
                                   "only be specified once"),
    (("--debug=maybe",), 'invalid argument "maybe" for "--debug" flag: strconv.ParseBool'),
    (("--extra", "{bad"), 'invalid argument "{bad" for "--extra" flag: decoding JSON'),
    (("--help",), "config.parse: pflag: help requested"),
    (("--to-run", "x"), "config.parse: unknown flag: --to-run"),
])
def test_parse_rejects_bad_args_like_tilt(tiltfile, args, message):
    error = error_of(tiltfile, DEFINITIONS, args=args)
    assert message in str(error)
    assert error.location is not None and error.location.line == 7


def test_parse_prints_usage_on_bad_args(tmp_path):
    ctx = EvalContext(main_path=str(tmp_path / "Tiltfile"), args=("--nope",))
    area = ConfigArea(ctx)
    builtins = area.builtins()
    builtins["config.define_string"]("env", usage="environment name")
    builtins["config.define_bool"]("debug")
    with pytest.raises(BuiltinError, match="unknown flag: --nope"):
        builtins["config.parse"]()
    assert ctx.output == ["Usage:\n      --env string\tenvironment name\n      --debug"]


def test_positional_args_without_an_args_setting_are_an_error(tiltfile):
    error = error_of(tiltfile, 'config.define_string("env")\nconfig.parse()\n', args=("api",))
    assert "positional args were specified, but none were expected" in str(error)


def test_a_string_positional_setting_takes_one_value(tiltfile):
    text = 'config.define_string("target", args=True)\nprint(config.parse())\n'
    assert tiltfile(text, args=("api",)).output == ('{"target": "api"}',)
    error = error_of(tiltfile, text, args=("api", "web"))
    assert "error setting positional arg target: string settings can only be specified once" \
        in str(error)


def test_config_file_is_read_recorded_and_overridden_by_args(tiltfile, tmp_path):
    files = {"tilt_config.json": '{"env": "from-file", "debug": true, "services": ["s1"],'
                                 ' "extra": {"n": 1}, "to-run": null}'}
    result = tiltfile(DEFINITIONS, files=files, args=("--env", "from-args"))
    assert result.output == ('[("debug", True), ("env", "from-args"), ("extra", {"n": 1}), '
                             '("services", ["s1"])]',)
    assert str(tmp_path / "tilt_config.json") in result.plan.config_files


def test_parse_from_a_helper_function_reads_the_main_tiltfiles_config(tiltfile):
    result = tiltfile("""
        load("lib/settings.star", "get_config")
        print(get_config())
    """, files={"tilt_config.json": '{"env": "main"}', "lib/tilt_config.json": '{"env": "lib"}',
                "lib/settings.star": """
        def get_config():
            config.define_string("env")
            return config.parse()
    """})
    assert result.output == ('{"env": "main"}',)


def test_parse_from_two_directories_is_an_error(tiltfile):
    error = error_of(tiltfile, 'config.parse()\ninclude("sub/Tiltfile")\n',
                     files={"sub/Tiltfile": "config.parse()\n"})
    assert "config.parse: can only be called from one Tiltfile working directory per run" \
        in str(error)


def test_missing_config_file_is_still_recorded(tiltfile, tmp_path):
    result = tiltfile("config.parse()\n")
    assert str(tmp_path / "tilt_config.json") in result.plan.config_files


@pytest.mark.parametrize("content, message", [
    ('{"nope": 1}', "specified unknown setting name 'nope'"),
    ('{"env": 3}', "specified invalid value for setting env: expected string, found float64"),
    ('{"debug": "yes"}', "invalid value for setting debug: expected bool, found string"),
    ('{"services": "a"}', "invalid value for setting services: expected array"),
    ('{"services": [1]}', "invalid value for setting services: expected string, got float64"),
    ("{nope", "error parsing json from "),
])
def test_bad_config_files_are_reported(tiltfile, content, message):
    error = error_of(tiltfile, DEFINITIONS, files={"tilt_config.json": content})
    assert "config.parse: " in str(error) and message in str(error)


@pytest.mark.parametrize("text, message", [
    ('config.define_string("a")\nconfig.define_bool("a")\n', "a defined multiple times"),
    ('config.define_string("a", args=True)\nconfig.define_string_list("b", args=True)\n',
     "both b and a are defined as positional args"),
    ('config.parse()\nconfig.define_string("late")\n',
     "config.define_string cannot be called after config.parse is called"),
    ('x = 1\nconfig.define_string("")\n', "'name' is required"),
    ('x = 1\nconfig.define_string(1)\n', "for parameter 'name': got int, want string"),
    ('x = 1\nconfig.define_bool("a", args="yes")\n', "for parameter 'args': got string, want bool"),
    ('x = 1\nconfig.define_string("a", bogus=1)\n', "unexpected keyword argument 'bogus'"),
    ('x = 1\nconfig.parse(1)\n', "takes 1 positional argument"),
])
def test_definition_errors(tiltfile, text, message):
    error = error_of(tiltfile, text)
    assert message in str(error)
    assert error.location is not None and error.location.line == 2


def test_constants(tiltfile, tmp_path):
    result = tiltfile("print(config.main_path, config.main_dir, config.tilt_subcommand)\n",
                      subcommand="ci")
    assert result.output == (f"{tmp_path}/Tiltfile {tmp_path} ci",)


# ---------------------------------------------------------------------------- enabled resources


@pytest.mark.parametrize("text, args, expected", [
    ("", (), None),
    ("", ("api", "web"), ("api", "web")),
    ("config.parse()\n", (), None),
    ('config.define_string_list("x", args=True)\nconfig.parse()\n', ("api",), None),
    ('config.set_enabled_resources(["db"])\n', ("api",), ("db",)),
    ("config.set_enabled_resources([])\n", (), None),
    ("config.set_enabled_resources(())\n", ("api",), ("api",)),
    ("config.clear_enabled_resources()\n", ("api",), ()),
    ('config.clear_enabled_resources()\nconfig.set_enabled_resources(["a", "b"])\n', (),
     ("a", "b")),
    ('config.set_enabled_resources(["a"])\nconfig.clear_enabled_resources()\n', (), ()),
])
def test_enabled_resources(tiltfile, text, args, expected):
    assert tiltfile(text, args=args).plan.enabled_resources == expected


@pytest.mark.parametrize("text, message", [
    ("config.set_enabled_resources('api')", "for parameter 'resources': got string, want list"),
    ("config.set_enabled_resources([1])", "resources must be a list of string, got int"),
    ("config.set_enabled_resources()", "missing 1 required positional argument: 'resources'"),
    ("config.clear_enabled_resources(1)", "takes 1 positional argument but 2 were given"),
])
def test_enabled_resources_errors(tiltfile, text, message):
    assert message in str(error_of(tiltfile, text + "\n"))


def test_to_run_groups_pattern(tiltfile):
    """The common pattern: named groups of resources selected by positional args."""
    text = """
        config.define_string_list("to-run", args=True)
        cfg = config.parse()
        groups = {"backend": ["api", "db"], "frontend": ["web"]}
        resources = []
        for arg in cfg.get("to-run", []):
            resources += groups.get(arg, [arg])
        config.set_enabled_resources(resources)
    """
    assert tiltfile(text, args=("backend", "worker")).plan.enabled_resources == \
        ("api", "db", "worker")


def test_to_run_groups_pattern_without_args_enables_everything(tiltfile):
    text = """
        config.define_string_list("to-run", args=True)
        cfg = config.parse()
        resources = []
        for arg in cfg.get("to-run", []):
            resources.append(arg)
        config.set_enabled_resources(resources)
    """
    assert tiltfile(text).plan.enabled_resources is None
