"""The audit table (docs/tilt-api.md) holds: it is up to date, no row is missing, and every
builtin called with every parameter behaves as its row says.

Each row runs a small Tiltfile twice: once with the builtin's base call (only its required
arguments) and once with the row's parameter added (or changed). A supported parameter
changes the result (the output, the value returned, or the Plan); a no-op one is accepted
and type-checked; an ignored one is accepted with a warning naming it; a refused one fails
with a message naming the builtin.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from devloop.model import plan as p
from devloop.tiltfile import v1alpha1_area as v1
from devloop.tiltfile.config_area import ConfigArea
from devloop.tiltfile.context import EvalContext
from devloop.tiltfile.errors import BuiltinError, TiltfileError
from devloop.tiltfile.evaluator import evaluate

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("tilt_api_table",
                                               ROOT / "scripts" / "tilt_api_table.py")
assert _SPEC is not None and _SPEC.loader is not None
table = importlib.util.module_from_spec(_SPEC)
sys.modules["tilt_api_table"] = table  # its dataclasses look their module up
_SPEC.loader.exec_module(table)
ROWS = table.rows()

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, labels: {tier: web}}
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: app, image: app}]
"""
# A stand-in for helm and kustomize: a ConfigMap whose data is the command line.
FAKE_TOOL = """#!/bin/sh
printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: rendered}\\ndata: {args: "%s %s"}\\n' \\
  "$(basename "$0")" "$*"
"""
FILES = {
    "app/Dockerfile": "FROM scratch\n", "app/Other.Dockerfile": "FROM scratch\nRUN true\n",
    "app/src/main.py": "", "app.yaml": DEPLOYMENT, "data.json": '{"a": 1}',
    "data.yaml": "a: 1\n", "stream.yaml": "a: 1\n---\nb: 2\n", "lib.star": "x = 1\n",
    "inc.star": "print('included')\n", "chart/Chart.yaml": "name: c\n",
    "chart/values.yaml": "a: 1\n", "kdir/kustomization.yaml": "resources: []\n",
    "compose.yaml": "services:\n  web:\n    image: nginx\n    ports: ['8080:80']\n"
                    "  db:\n    image: redis\n",
    "ctx2/Dockerfile": "FROM scratch\n", "data2.json": "[2]", "data2.yaml": "b: 2\n",
    "other.env": "X=1\n", "dir/sub/f.txt": "", "ref.txt": "gcr.io/x/app:1\n",
}

# name -> (setup lines, required arguments); every other parameter starts unset.
BASE: dict[str, tuple[str, dict[str, str]]] = {
    "port_forward": ("", {"local_port": "8000"}),
    "link": ("", {"url": "'http://a'"}),
    "fall_back_on": ("", {"files": "['app']"}),
    "set_team": ("", {"team_id": "'t1'"}),
    "sync": ("", {"local_path": "'app'", "remote_path": "'/srv'"}),
    "run": ("", {"cmd": "'make'"}),
    "docker_build": ("k8s_yaml('app.yaml')", {"ref": "'app'", "context": "'app'"}),
    "fail": ("", {}),
    "docker_compose": ("", {"configPaths": "'compose.yaml'"}),
    "k8s_yaml": ("k8s_yaml('app.yaml')", {"yaml": "'app.yaml'"}),
    "k8s_custom_deploy": ("docker_build('app', 'app')", {
        "name": "'cd'", "apply_cmd": "'true'", "delete_cmd": "'true'", "deps": "['app']",
        "image_selector": "'img'"}),
    "trigger_mode": ("local_resource('r', 'true')", {"trigger_mode": "TRIGGER_MODE_AUTO"}),
    "dc_resource": ("docker_compose('compose.yaml')", {"name": "'web'"}),
    "k8s_resource": ("k8s_yaml(['app.yaml', blob('apiVersion: v1\\nkind: Secret\\n"
                     "metadata: {name: s}\\n'), blob('apiVersion: v1\\nkind: Pod\\n"
                     "metadata: {name: api}\\nspec: {containers: [{name: c, image: i}]}')])",
                     {"workload": "'app'"}),
    "filter_yaml": ("", {"yaml": "'app.yaml'"}),
    "include": ("", {"path": "'inc.star'"}),
    "load_dynamic": ("", {"path": "'lib.star'"}),
    "local": ("", {"command": "'echo hi; pwd; echo $X; cat'"}),
    "read_file": ("", {"paths": "'data.yaml'"}),
    "watch_file": ("", {"paths": "'data.yaml'"}),
    "kustomize": ("", {"pathToDir": "'kdir'"}),
    "helm": ("", {"pathToChartDir": "'chart'"}),
    "blob": ("", {"input": "'x'"}),
    "listdir": ("", {"dir": "'dir'"}),
    "k8s_kind": ("k8s_yaml(blob('apiVersion: x.io/v1\\nkind: Env\\nmetadata: {name: e}\\n"
                 "spec: {image: app}\\n'))\ndocker_build('app', 'app')", {"kind": "'Env'"}),
    "decode_json": ("", {"json": "'{\"a\": 1}'"}),
    "encode_json": ("", {"obj": "{'a': 1}"}),
    "read_json": ("", {"paths": "'data.json'"}),
    "read_yaml": ("", {"paths": "'data.yaml'"}),
    "read_yaml_stream": ("", {"paths": "'stream.yaml'"}),
    "decode_yaml": ("", {"yaml": "'a: 1'"}),
    "decode_yaml_stream": ("", {"yaml": "'a: 1'"}),
    "encode_yaml": ("", {"obj": "{'a': 1}"}),
    "encode_yaml_stream": ("", {"objs": "[{'a': 1}]"}),
    "default_registry": ("", {"host": "'localhost:5000'"}),
    "custom_build": ("k8s_yaml('app.yaml')", {"ref": "'app'", "command": "'true'",
                                              "deps": "['app']"}),
    "allow_k8s_contexts": ("", {"contexts": "'c1'"}),
    "enable_feature": ("", {"feature_name": "'snapshots'"}),
    "disable_feature": ("", {"feature_name": "'snapshots'"}),
    "local_resource": ("", {"name": "'r'", "cmd": "'true'", "serve_cmd": "'serve'"}),
    "test": ("", {"name": "'r'", "cmd": "'true'", "serve_cmd": "'serve'"}),
    "docker_prune_settings": ("", {}),
    "analytics_settings": ("", {}),
    "version_settings": ("", {}),
    "secret_settings": ("", {}),
    "update_settings": ("", {}),
    "ci_settings": ("", {}),
    "watch_settings": ("", {"ignore": "'a'"}),
    "warn": ("", {"msg": "'careful'"}),
    "exit": ("", {}),
    "probe": ("", {"exec": "exec_action(['true'])"}),
    "exec_action": ("", {"command": "['true']"}),
    "http_get_action": ("", {"port": "80"}),
    "tcp_socket_action": ("", {"port": "80"}),
    "config.define_string_list": ("", {"name": "'a'"}),
    "config.define_string": ("", {"name": "'a'"}),
    "config.define_bool": ("", {"name": "'a'"}),
    "config.set_enabled_resources": ("local_resource('r', 'true')\n"
                                     "local_resource('s', 'true')", {"resources": "['r']"}),
    "os.getenv": ("", {"key": "'DEVLOOP_AUDIT'"}),
    "os.putenv": ("", {"key": "'A'", "value": "'1'"}),
    "os.unsetenv": ("os.putenv('A', '1')", {"key": "'A'"}),
    "os.path.abspath": ("", {"path": "'a'"}),
    "os.path.relpath": ("", {"targpath": "'/a/b/c'"}),
    "os.path.basename": ("", {"path": "'a/b'"}),
    "os.path.dirname": ("", {"path": "'a/b'"}),
    "os.path.exists": ("", {"path": "'data.yaml'"}),
    "os.path.realpath": ("", {"path": "'a'"}),
    "shlex.quote": ("", {"s": "'a b'"}),
    "k8s_image_json_path": ("k8s_yaml(blob('apiVersion: x.io/v1\\nkind: Env\\nmetadata: "
                            "{name: e}\\nspec: {image: app, other: app}\\n'))\n"
                            "docker_build('app', 'app')",
                            {"paths": "'{.spec.image}'", "kind": "'Env'"}),
    "local_git_repo": ("", {"paths": "'.'"}),
    "experimental_telemetry_cmd": ("", {"cmd": "'true'"}),
    "experimental_analytics_report": ("", {"tags": "{'a': 'b'}"}),
}

# (builtin, keyword) -> the value a row passes; for a required argument, one that differs
# from BASE's.
SAMPLE: dict[tuple[str, str], str] = {
    **{("port_forward", k): v for k, v in {
        "local_port": "8001", "container_port": "80", "name": "'web'", "link_path": "'/x'",
        "host": "'0.0.0.0'"}.items()},
    ("link", "url"): "'http://b'", ("link", "name"): "'docs'",
    ("fall_back_on", "files"): "['app/src']", ("set_team", "team_id"): "'t2'",
    ("sync", "local_path"): "'app/src'", ("sync", "remote_path"): "'/opt'",
    ("run", "cmd"): "['make', 'x']", ("run", "trigger"): "['app']",
    ("run", "echo_off"): "True",
    **{("docker_build", k): v for k, v in {
        "ref": "'app2'", "context": "'ctx2'", "build_args": "{'A': '1'}",
        "dockerfile": "'app/Other.Dockerfile'", "dockerfile_contents": "'FROM busybox'",
        "live_update": "[sync('app/src', '/srv')]", "match_in_env_vars": "True",
        "ignore": "['*.log']", "only": "['src']", "entrypoint": "['run']",
        "target": "'dev'", "ssh": "'default'", "network": "'host'",
        "secret": "'id=a,src=b'", "extra_tag": "'app:extra'", "container_args": "['-v']",
        "cache_from": "'app:cache'", "pull": "True", "platform": "'linux/amd64'",
        "extra_hosts": "'db:10.0.0.2'"}.items()},
    ("docker_compose", "configPaths"): "['compose.yaml', blob('services: {db: "
                                       "{image: redis}}')]",
    ("docker_compose", "env_file"): "'other.env'", ("docker_compose", "project_name"): "'p'",
    ("docker_compose", "profiles"): "['debug']", ("docker_compose", "wait"): "True",
    ("k8s_yaml", "yaml"): "blob('apiVersion: v1\\nkind: Secret\\nmetadata: {name: s}\\n')",
    ("k8s_yaml", "allow_duplicates"): "True",
    **{("k8s_custom_deploy", k): v for k, v in {
        "name": "'cd2'", "apply_cmd": "'echo'", "delete_cmd": "'echo'", "deps": "['app/src']",
        "image_selector": "'app'", "live_update": "[sync('app', '/srv')]",
        "apply_dir": "'app'", "apply_env": "{'A': '1'}", "apply_cmd_bat": "'x.bat'",
        "delete_dir": "'app'", "delete_env": "{'A': '1'}", "delete_cmd_bat": "'x.bat'",
        "container_selector": "'web'", "image_deps": "['app']"}.items()},
    ("trigger_mode", "trigger_mode"): "TRIGGER_MODE_MANUAL",
    **{("dc_resource", k): v for k, v in {
        "name": "'db'", "trigger_mode": "TRIGGER_MODE_MANUAL", "resource_deps": "['x']",
        "links": "['http://a']", "labels": "['l']", "auto_init": "False",
        "project_name": "'compose'", "new_name": "'www'", "infer_links": "False"}.items()},
    **{("k8s_resource", k): v for k, v in {
        "workload": "'api'", "new_name": "'web'", "port_forwards": "8000",
        "extra_pod_selectors": "{'a': 'b'}", "trigger_mode": "TRIGGER_MODE_MANUAL",
        "resource_deps": "['x']", "objects": "['s']", "auto_init": "False",
        "pod_readiness": "'ignore'", "links": "['http://a']", "labels": "['l']",
        "discovery_strategy": "'selectors-only'"}.items()},
    **{("filter_yaml", k): v for k, v in {
        "yaml": "blob('kind: Secret\\napiVersion: v1\\nmetadata: {name: s}\\n')",
        "labels": "{'tier': 'db'}", "name": "'nope'", "namespace": "'nope'",
        "kind": "'Service'", "api_version": "'^v1$'"}.items()},
    ("include", "path"): "'lib.star'", ("load_dynamic", "path"): "'inc.star'",
    **{("local", k): v for k, v in {
        "command": "'echo bye'", "quiet": "True", "command_bat": "'echo hi'",
        "echo_off": "True", "env": "{'X': 'set'}", "dir": "'dir'", "stdin": "'typed'"}.items()},
    ("read_file", "paths"): "'data.json'", ("read_file", "default"): "'d'",
    ("watch_file", "paths"): "'data.json'",
    ("kustomize", "pathToDir"): "'chart'",
    ("kustomize", "kustomize_bin"): "os.path.abspath('bin/helm')",
    ("kustomize", "flags"): "['--enable-helm']",
    **{("helm", k): v for k, v in {
        "pathToChartDir": "'kdir'", "name": "'n'", "namespace": "'ns'",
        "values": "['chart/values.yaml']", "set": "['a=2']", "kube_version": "'1.29'",
        "skip_crds": "True"}.items()},
    ("blob", "input"): "'y'", ("listdir", "dir"): "'dir/sub'", ("listdir", "recursive"): "True",
    ("k8s_kind", "kind"): "'Nope'", ("k8s_kind", "api_version"): "'y.io/v1'",
    ("k8s_kind", "image_json_path"): "'{.spec.image}'",
    ("k8s_kind", "image_object"): "{'json_path': '{.spec}', 'repo_field': 'r', "
                                  "'tag_field': 't'}",
    ("k8s_kind", "pod_readiness"): "'wait'",
    ("decode_json", "json"): "'[1]'", ("encode_json", "obj"): "[1]",
    ("read_json", "paths"): "'data2.json'", ("read_json", "default"): "'d'",
    ("read_yaml", "paths"): "'data2.yaml'", ("read_yaml", "default"): "'d'",
    ("read_yaml_stream", "paths"): "'data2.yaml'", ("read_yaml_stream", "default"): "[]",
    ("decode_yaml", "yaml"): "'b: 2'", ("decode_yaml_stream", "yaml"): "'b: 2'",
    ("encode_yaml", "obj"): "[1]", ("encode_yaml_stream", "objs"): "[[1]]",
    ("default_registry", "host"): "'localhost:5001'",
    ("default_registry", "host_from_cluster"): "'registry:5000'",
    ("default_registry", "single_name"): "'one'",
    **{("custom_build", k): v for k, v in {
        "ref": "'app2'", "command": "'make'", "deps": "['app/src']", "tag": "'v1'",
        "disable_push": "True", "skips_local_docker": "True",
        "live_update": "[sync('app', '/srv')]", "match_in_env_vars": "True",
        "ignore": "['*.log']", "entrypoint": "['run']", "command_bat_val": "'x.bat'",
        "outputs_image_ref_to": "'ref.txt'", "command_bat": "'x.bat'",
        "image_deps": "['base']", "env": "{'A': '1'}", "dir": "'app'"}.items()},
    ("allow_k8s_contexts", "contexts"): "['c2']",
    ("enable_feature", "feature_name"): "'time_travel'",
    ("disable_feature", "feature_name"): "'time_travel'",
    **{(fn, k): v for fn in ("local_resource", "test") for k, v in {
        "name": "'r2'", "cmd": "'make'", "deps": "['app']", "trigger_mode":
        "TRIGGER_MODE_MANUAL", "resource_deps": "['x']", "ignore": "['*.log']",
        "auto_init": "False", "serve_cmd": "'serve2'", "cmd_bat": "'x.bat'",
        "serve_cmd_bat": "'x.bat'", "allow_parallel": "True", "links": "['http://a']",
        "labels": "['l']", "env": "{'A': '1'}", "serve_env": "{'A': '1'}",
        "readiness_probe": "probe(exec=exec_action(['true']))", "dir": "'app'",
        "serve_dir": "'app'"}.items()},
    ("docker_prune_settings", "disable"): "True",
    ("docker_prune_settings", "max_age_mins"): "60",
    ("docker_prune_settings", "num_builds"): "5",
    ("docker_prune_settings", "interval_hrs"): "2",
    ("docker_prune_settings", "keep_recent"): "1",
    ("analytics_settings", "enable"): "False",
    ("version_settings", "check_updates"): "False",
    ("version_settings", "constraint"): "'>=0.22.0'",
    ("secret_settings", "disable_scrub"): "True",
    ("update_settings", "max_parallel_updates"): "5",
    ("update_settings", "k8s_upsert_timeout_secs"): "60",
    ("update_settings", "suppress_unused_image_warnings"): "['x']",
    ("update_settings", "k8s_server_side_apply"): "False",
    ("ci_settings", "k8s_grace_period"): "'10s'", ("ci_settings", "timeout"): "'5m'",
    ("ci_settings", "readiness_timeout"): "'1m'",
    ("watch_settings", "ignore"): "'b'", ("warn", "msg"): "'more careful'",
    ("fail", "msg"): "'bang'", ("exit", "code"): "'bye'",
    **{("probe", k): v for k, v in {
        "initial_delay_secs": "5", "timeout_secs": "5", "period_secs": "5",
        "success_threshold": "2", "failure_threshold": "5",
        "exec": "exec_action(['false'])", "http_get": "http_get_action(80)",
        "tcp_socket": "tcp_socket_action(80)"}.items()},
    ("exec_action", "command"): "['false']",
    ("http_get_action", "port"): "81", ("http_get_action", "host"): "'h'",
    ("http_get_action", "scheme"): "'https'", ("http_get_action", "path"): "'/p'",
    ("tcp_socket_action", "port"): "81", ("tcp_socket_action", "host"): "'h'",
    **{(f"config.define_{kind}", k): v for kind in ("string_list", "string", "bool")
       for k, v in {"name": "'b'", "args": "True", "usage": "'u'"}.items()},
    ("config.set_enabled_resources", "resources"): "['s']",
    ("os.getenv", "key"): "'HOME'", ("os.getenv", "default"): "'d'",
    ("os.putenv", "key"): "'B'", ("os.putenv", "value"): "'2'",
    ("os.unsetenv", "key"): "'C'",
    ("os.path.abspath", "path"): "'b'", ("os.path.relpath", "targpath"): "'/a/d'",
    ("os.path.relpath", "basepath"): "'/a'", ("os.path.basename", "path"): "'a/c'",
    ("os.path.dirname", "path"): "'c/b'", ("os.path.exists", "path"): "'nope'",
    ("os.path.realpath", "path"): "'dir'", ("shlex.quote", "s"): "'c d'",
    ("k8s_image_json_path", "paths"): "'{.spec.other}'",
    ("k8s_image_json_path", "kind"): "'Other'", ("k8s_image_json_path", "name"): "'n'",
    ("k8s_image_json_path", "namespace"): "'ns'",
    ("k8s_image_json_path", "api_version"): "'^y'",
    ("local_git_repo", "paths"): "'dir'",
    ("experimental_telemetry_cmd", "cmd"): "'false'",
    ("experimental_telemetry_cmd", "cmd_bat"): "'x.bat'",
    ("experimental_telemetry_cmd", "period"): "'1m'",
    ("experimental_telemetry_cmd", "dir"): "'app'",
    ("experimental_analytics_report", "tags"): "{'a': 'c'}",
}

# (builtin, keyword) -> the required arguments of that row's base call, when they must
# differ from BASE's to show the parameter's effect (a default needs a missing file...).
ROW_BASE: dict[tuple[str, str], dict[str, str]] = {
    **{(fn, "default"): {"paths": "'missing'"} for fn in (
        "read_file", "read_json", "read_yaml", "read_yaml_stream")},
    **{("probe", k): {} for k in ("exec", "http_get", "tcp_socket")},
}

# Rows the generic comparison cannot express, each checked by its own Tiltfile:
# (Tiltfile, Tiltfile args, text the output or the Plan must contain).
SPECIAL: dict[tuple[str, str], tuple[str, tuple[str, ...], str]] = {
    ("load", "path"): ("load('lib.star', 'x')\nprint('x is', x)", (), "x is 1"),
    ("load", "*args"): ("load('lib.star', y='x')\nprint('y is', y)", (), "y is 1"),
    ("struct", "**kwargs"): ("print('a is', struct(a=1).a)", (), "a is 1"),
    ("fail", "msg"): ("fail('bang')", (), "bang"),
    ("os.path.join", "path"): ("print('joined', os.path.join('a'))", (), "joined a"),
    ("os.path.join", "*paths"): ("print('joined', os.path.join('a', 'b'))", (), "joined a/b"),
    ("workload_to_resource_function", "fn"): (
        "workload_to_resource_function(lambda id: 'w-' + id.name)\nk8s_yaml('app.yaml')",
        (), '"name": "w-app"'),
    ("experimental_metrics_settings", "*args"): ("experimental_metrics_settings(True)", (),
                                                 "experimental_metrics_settings"),
    ("experimental_metrics_settings", "**kwargs"): (
        "experimental_metrics_settings(enabled=True)", (), "experimental_metrics_settings"),
    ("dc_resource", "project_name"): (
        "docker_compose('compose.yaml', project_name='p')\n"
        "dc_resource('web', project_name='p', labels=['picked'])", (), '"picked"'),
    **{(f"config.define_{kind}", "name"): (
        f"config.define_{kind}('flag')\nprint('parsed', config.parse())", (f"--flag={v}",),
        f"parsed {{\"flag\": {r}}}") for kind, v, r in (
            ("string_list", "a", '["a"]'), ("string", "a", '"a"'), ("bool", "true", "True"))},
    **{(f"config.define_{kind}", "args"): (
        f"config.define_{kind}('flag', args=True)\nprint('parsed', config.parse())", (v,),
        f"parsed {{\"flag\": {r}}}") for kind, v, r in (
            ("string_list", "a", '["a"]'), ("string", "a", '"a"'), ("bool", "true", "True"))},
    # A step prints as Tilt's text, which leaves echo_off out: the Plan shows it.
    ("run", "echo_off"): ("k8s_yaml('app.yaml')\ndocker_build('app', 'app', live_update=["
                          "run('make', echo_off=True)])", (), '"echo_off": true'),
    ("dc_resource", "name"): ("docker_compose('compose.yaml')\n"
                              "dc_resource('db', labels=['picked'])", (), '"picked"'),
    ("k8s_resource", "workload"): (
        "k8s_yaml(['app.yaml', blob('apiVersion: v1\\nkind: Pod\\nmetadata: {name: api}\\n"
        "spec: {containers: [{name: c, image: i}]}')])\nk8s_resource('api', labels=['picked'])",
        (), '"picked"'),
}


def _usage_is_shown_on_bad_flags(builtin: str) -> None:
    """config.define_*(usage=...): the usage config.parse() prints when flags are wrong
    (the output of a failed evaluation is streamed, so the check reads the area's)."""
    ctx = EvalContext(main_path="/nowhere/Tiltfile", args=("--nope=1",))
    area = ConfigArea(ctx)
    functions = area.builtins()
    functions[builtin]("flag", usage="what flag does")
    with pytest.raises(BuiltinError, match="unknown flag"):
        functions["config.parse"]()
    assert "what flag does" in "\n".join(ctx.output)


CHECKS: dict[tuple[str, str], Any] = {
    (f"config.define_{kind}", "usage"): _usage_is_shown_on_bad_flags
    for kind in ("string_list", "string", "bool")}


def _v1alpha1_sample(kind: str, depth: int = 0) -> str:
    """A value of a v1alpha1 field kind (see v1alpha1_area.Field)."""
    scalars = {"str": "'s'", "int": "7", "bool": "True", "str_list": "['a']",
               "str_map": "{'a': 'b'}", "path": "'dir'", "path_list": "['dir']",
               "duration": "'5s'", "time": "'2024-01-01T00:00:00Z'"}
    if kind in scalars:
        return scalars[kind]
    if kind.startswith("list:"):
        return f"[{_v1alpha1_sample(kind[5:], depth)}]"
    name, _, first = v1.TYPES[kind][0]
    return "{" + f"'{name}': {_v1alpha1_sample(first, depth + 1)}" + "}"


def _v1alpha1_call(row: Any) -> tuple[str, str, str]:
    """(setup, base call, call with the row's parameter) for a v1alpha1 builtin."""
    short = row.builtin.removeprefix("v1alpha1.")
    if short in v1.HELPERS:
        type_ = v1.HELPERS[short]
        kinds = {f[0]: f[2] for f in v1.TYPES[type_]} | {"handler": "Handler"}
        sample = _v1alpha1_sample(kinds[row.keyword])
        return "", f"print({row.builtin}())", f"print({row.builtin}({row.keyword}={sample}))"
    obj = v1.OBJECTS[short]
    kinds = {f[0]: f[2] for f in obj.fields} | {"labels": "str_map", "annotations": "str_map"}
    required = {"cmd": "args=['true']", "file_watch": "watched_paths=['dir']",
                "extension_repo": "url='file:///x'", "extension": "repo_name='r', "
                                                              "repo_path='p'",
                "kubernetes_apply": "yaml='x'"}.get(short, "")
    sep = ", " if required else ""
    if row.keyword == "name":
        sample = "'other'"
    elif row.keyword in required:
        sample = {"args": "['false']", "watched_paths": "['dir/sub']",
                  "url": "'file:///y'", "repo_name": "'q'", "repo_path": "'q'",
                  "yaml": "'y'"}[row.keyword]
        required = ", ".join(part for part in required.split(", ")
                             if not part.startswith(row.keyword + "="))
        sep = ", " if required else ""
    else:
        sample = _v1alpha1_sample(kinds[row.keyword])
    base = f"{row.builtin}('o'{sep}{required})"
    if row.keyword == "name":
        return "", base, f"{row.builtin}({sample}{sep}{required})"
    return "", base, f"{row.builtin}('o'{sep}{required}, {row.keyword}={sample})"


def _call(row: Any) -> tuple[str, str, str]:
    """(setup, base call, call with the row's parameter)."""
    if row.builtin.startswith("v1alpha1."):
        return _v1alpha1_call(row)
    setup, required = BASE.get(row.builtin, ("", {}))
    required = ROW_BASE.get((row.builtin, row.keyword), required)
    value = SAMPLE[(row.builtin, row.keyword)]
    with_param = {**required, row.keyword: value}

    def text(args: dict[str, str]) -> str:
        joined = ", ".join(f"{k}={v}" for k, v in args.items())
        return f"__r = {row.builtin}({joined})\nprint('=>', __r)"

    return setup, text(required), text(with_param)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit")
    for rel, content in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    (root / "dir" / ".git").mkdir()
    for tool in ("helm", "kustomize"):
        (root / "bin" / tool).parent.mkdir(exist_ok=True)
        (root / "bin" / tool).write_text(FAKE_TOOL)
        (root / "bin" / tool).chmod(0o755)
    return root


@pytest.fixture(autouse=True)
def _tools_on_path(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{project / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KUBECONFIG", str(project / "no-kubeconfig"))
    monkeypatch.delenv("DEVLOOP_AUDIT", raising=False)


def run(project: Path, text: str, args: tuple[str, ...] = ()
        ) -> tuple[str, tuple[str, ...], tuple[str, ...], str]:
    """(error message or '', output, warnings, the Plan as JSON) of a Tiltfile."""
    path = project / "Tiltfile"
    path.write_text(textwrap.dedent(text))
    try:
        result = evaluate(str(path), args=args)
    except TiltfileError as exc:
        return exc.message, (), (), ""
    plan = json.dumps(p.to_jsonable(result.plan), sort_keys=True)
    return "", result.output, result.plan.warnings, plan


def test_the_table_is_up_to_date():
    with open(table.OUTPUT, encoding="utf-8") as handle:
        assert handle.read() == table.render(ROWS), \
            "docs/tilt-api.md is stale: run python scripts/tilt_api_table.py"


def test_no_builtin_or_parameter_is_missing():
    missing = [f"{r.builtin}({r.param})" for r in ROWS if r.status == table.MISSING]
    assert missing == []


def test_every_row_is_supported_or_deliberately_not():
    statuses = {r.status for r in ROWS}
    assert statuses <= {table.SUPPORTED, table.NO_OP, table.IGNORED, table.REFUSED}
    assert all(r.note for r in ROWS if r.status != table.SUPPORTED)


VALUES = {name for name, _, is_value, _ in table.read_api() if is_value}


@pytest.mark.parametrize("row", [r for r in ROWS if not r.param],
                         ids=lambda r: r.builtin)
def test_values_and_builtins_without_parameters_exist(project, row):
    call = row.builtin if row.builtin in VALUES else f"{row.builtin}()"
    error, output, _, _ = run(project, f"print(type({call}))\n")
    assert error == ""
    assert output


@pytest.mark.parametrize("row", [r for r in ROWS if r.param],
                         ids=lambda r: f"{r.builtin}-{r.param}")
def test_each_parameter_does_what_its_row_says(project, row):
    if (row.builtin, row.keyword) in CHECKS:
        CHECKS[(row.builtin, row.keyword)](row.builtin)
        return
    if (row.builtin, row.keyword or row.param) in SPECIAL:
        text, args, expected = SPECIAL[(row.builtin, row.keyword or row.param)]
        error, output, warnings, plan = run(project, text + "\n", args)
        seen = "\n".join([error, *output, *warnings, plan])
        assert expected in seen, seen
        if row.status == table.IGNORED:
            assert any(row.builtin in w for w in warnings), warnings
        return
    if not row.keyword:
        # The stubs list it, Tilt's implementation takes no such keyword: neither does
        # devloop's, and passing it fails like Tilt.
        setup = BASE.get(row.builtin, ("", {}))[0]
        error, *_ = run(project, f"{setup}\n{row.builtin}('K', {row.param}='x')\n")
        assert row.param in error, error
        return
    setup, base, with_param = _call(row)
    base_result = run(project, f"{setup}\n{base}\n")
    result = run(project, f"{setup}\n{with_param}\n")
    error, output, warnings, plan = result
    if row.status == table.REFUSED:
        assert row.builtin.split(".")[-1] in error, error
    elif row.status == table.IGNORED:
        assert error == "", error
        assert any(row.param in w or row.builtin in w for w in warnings), warnings
    elif row.status == table.NO_OP:
        assert error == "", error
        wrong = with_param.replace(f"{row.keyword}={SAMPLE[(row.builtin, row.keyword)]}",
                                   f"{row.keyword}=3")
        bad = run(project, f"{setup}\n{wrong}\n")[0]
        assert row.keyword in bad, bad
    else:
        assert error == "", error
        assert result != base_result, f"{row.builtin}({row.keyword}=...) changed nothing"

