"""Session-wide settings builtins and v1alpha1 API objects."""

from __future__ import annotations

import json

import pytest

from devloop.tiltfile.errors import TiltfileError


def error_of(tiltfile, text, **kwargs) -> TiltfileError:
    with pytest.raises(TiltfileError) as info:
        tiltfile(text, **kwargs)
    return info.value


# ---------------------------------------------------------------------------- settings


def test_defaults_without_settings_calls(tiltfile):
    settings = tiltfile("x = 1\n").plan.settings
    assert settings.update.max_parallel_updates == 3
    assert settings.update.k8s_upsert_timeout_secs == 30
    assert settings.ci.timeout_secs is None
    assert settings.watch.ignore == ()
    assert settings.secrets.disable_scrub is False
    assert settings.docker_prune_enabled is True
    assert settings.snapshots_disabled is False


def test_update_settings_calls_combine(tiltfile):
    update = tiltfile("""
        update_settings(max_parallel_updates=5, suppress_unused_image_warnings="img-a")
        update_settings(k8s_upsert_timeout_secs=120, suppress_unused_image_warnings=["img-b"],
                        k8s_server_side_apply=False)
    """).plan.settings.update
    assert update.max_parallel_updates == 5
    assert update.k8s_upsert_timeout_secs == 120
    assert update.suppress_unused_image_warnings == ("img-a", "img-b")
    assert update.k8s_server_side_apply == "false"


@pytest.mark.parametrize("args, expected", [
    ('timeout="10m"', (None, 600, None)),
    ('k8s_grace_period="90s", timeout="1h30m", readiness_timeout="2m30s"', (90, 5400, 150)),
    ('timeout="1.5h"', (None, 5400, None)),
    ('timeout="300ms"', (None, 1, None)),
    ('timeout=45', (None, 45, None)),
    ('k8s_grace_period=""', (None, None, None)),
])
def test_ci_settings_parse_go_durations(tiltfile, args, expected):
    ci = tiltfile(f"ci_settings({args})\n").plan.settings.ci
    assert (ci.k8s_grace_period_secs, ci.timeout_secs, ci.readiness_timeout_secs) == expected


def test_watch_secret_version_prune_team_snapshots(tiltfile):
    result = tiltfile("""
        watch_settings(ignore=["**/node_modules", "*.log"])
        watch_settings("dist/")
        secret_settings(disable_scrub=True)
        version_settings(check_updates=False, constraint=">=0.22.0")
        docker_prune_settings(disable=True, max_age_mins=60)
        set_team("team-1")
        analytics_settings(False)
        disable_snapshots()
        enable_feature("snapshots")
        disable_feature("labels")
    """)
    settings = result.plan.settings
    assert settings.watch.ignore == ("**/node_modules", "*.log", "dist/")
    assert settings.secrets.disable_scrub is True
    assert settings.version_constraint == ">=0.22.0"
    assert settings.docker_prune_enabled is False
    assert settings.team_id == "team-1"
    assert settings.snapshots_disabled is True
    # Parameters devloop cannot honour say so (docs/tilt-api.md lists them as ignored).
    assert result.plan.warnings == (
        "version_settings: parameter 'check_updates' is ignored: devloop never checks for "
        "updates",
        "docker_prune_settings: parameter 'max_age_mins' is ignored: devloop prunes by "
        "`disable` only",
        "analytics_settings: parameter 'enable' is ignored: devloop sends no analytics")


def test_unknown_feature_flags_only_warn(tiltfile):
    result = tiltfile('enable_feature("time_travel")\n')
    assert result.plan.warnings == ("enable_feature: unknown feature flag 'time_travel'; ignored",)


@pytest.mark.parametrize("text, message", [
    ("update_settings(max_parallel_updates=0)",
     "update_settings: max number of parallel updates must be >= 1 (got: 0)"),
    ("update_settings(max_parallel_updates='3')",
     "update_settings: for parameter 'max_parallel_updates': got string, want int"),
    ("update_settings(k8s_upsert_timeout_secs=0)", "minimum k8s upsert timeout is 1s; got 0s"),
    ("update_settings(suppress_unused_image_warnings=3)",
     "for parameter 'suppress_unused_image_warnings': got int, want string or list"),
    ("update_settings(k8s_server_side_apply='maybe')", "want True, False or \"auto\""),
    ("update_settings(bogus=1)", "unexpected keyword argument 'bogus'"),
    ("ci_settings(timeout='10 minutes')", "ci_settings: for parameter 'timeout': time: invalid "
                                          "duration '10 minutes'"),
    ("ci_settings(k8s_grace_period='-5s')", "for parameter 'k8s_grace_period': must not be "
                                            "negative"),
    ("ci_settings(timeout=True)", "for parameter 'timeout': got bool, want string"),
    ("watch_settings(ignore=3)", "watch_settings: for parameter 'ignore': got int"),
    ("secret_settings(disable_scrub='yes')", "for parameter 'disable_scrub': got string, want "
                                             "bool"),
    ("version_settings(constraint='not a version')", "invalid version constraint"),
    ("version_settings(check_updates=1)", "for parameter 'check_updates': got int, want bool"),
    ("docker_prune_settings(max_age_mins='1h')", "for parameter 'max_age_mins': got string"),
    ("set_team('')", "set_team: team_id cannot be empty"),
    ("set_team('a')\nset_team('b')", "team_id set multiple times"),
    ("analytics_settings(enable='on')", "for parameter 'enable': got string, want bool"),
    ("disable_snapshots(1)", "takes 1 positional argument but 2 were given"),
    ("enable_feature(1)", "enable_feature: for parameter 'feature_name': got int, want string"),
])
def test_settings_errors(tiltfile, text, message):
    error = error_of(tiltfile, "x = 1\n" + text + "\n")
    assert message in str(error)
    assert error.location is not None and error.location.line >= 2


# ---------------------------------------------------------------------------- v1alpha1


def objects(result) -> dict[tuple[str, str], dict]:
    return {(o.kind, o.name): json.loads(o.spec_json) for o in result.plan.extension_objects}


def test_ui_button_with_location_and_inputs(tiltfile):
    result = tiltfile("""
        v1alpha1.ui_button(
            name="restart-db",
            annotations={"tilt.dev/resource": "db"},
            location=v1alpha1.ui_component_location(component_id="db",
                                                    component_type="Resource"),
            text="Restart", icon_name="refresh", requires_confirmation=True,
            inputs=[
                v1alpha1.ui_input_spec(name="table", label="Table",
                                       text=v1alpha1.ui_text_input_spec(default_value="users",
                                                                         placeholder="name")),
                v1alpha1.ui_input_spec(name="force", bool=v1alpha1.ui_bool_input_spec(
                    default_value=False, true_string="yes")),
                v1alpha1.ui_input_spec(name="mode", choice=v1alpha1.ui_choice_input_spec(
                    choices=["fast", "slow"])),
                {"name": "token", "hidden": {"value": "t0k"}},
            ])
    """)
    [button] = result.plan.extension_objects
    assert (button.kind, button.name) == ("UIButton", "restart-db")
    assert button.annotations == (("tilt.dev/resource", "db"),)
    assert json.loads(button.spec_json) == {
        "location": {"componentID": "db", "componentType": "Resource"},
        "text": "Restart", "iconName": "refresh", "requiresConfirmation": True,
        "inputs": [
            {"name": "table", "label": "Table",
             "text": {"defaultValue": "users", "placeholder": "name"}},
            {"name": "force", "bool": {"defaultValue": False, "trueString": "yes"}},
            {"name": "mode", "choice": {"choices": ["fast", "slow"]}},
            {"name": "token", "hidden": {"value": "t0k"}},
        ]}


def test_helpers_return_plain_dicts_keyed_by_parameter(tiltfile):
    result = tiltfile("""
        loc = v1alpha1.ui_component_location(component_id="nav", component_type="Global")
        print(type(loc), loc["component_id"], sorted(loc.keys()))
        print(v1alpha1.ui_hidden_input_spec("v"), v1alpha1.ui_text_input_spec())
    """)
    assert result.output == ('dict nav ["component_id", "component_type"]', '{"value": "v"} {}')


def test_object_constructors_cover_tilts_kinds(tiltfile, tmp_path):
    result = tiltfile("""
        v1alpha1.extension_repo(name="default", url="file:///ext", ref="main")
        v1alpha1.extension(name="hello", repo_name="default", repo_path="hello_world",
                           args=["--x"])
        v1alpha1.config_map(name="flags", data={"enabled": "true"}, labels={"team": "a"})
        v1alpha1.cmd(name="seed", args=["./seed.sh"], env=["A=1"],
                     readiness_probe=v1alpha1.probe(
                         http_get=v1alpha1.http_get_action(port=8080, path="/ready"),
                         period_seconds=2),
                     start_on=v1alpha1.start_on_spec(ui_buttons=["seed-btn"]),
                     restart_on=v1alpha1.restart_on_spec(file_watches=["fw"]),
                     disable_source=v1alpha1.disable_source(
                         config_map=v1alpha1.config_map_disable_source(name="flags",
                                                                       key="enabled")))
        v1alpha1.file_watch(name="fw", watched_paths=["src"],
                            ignores=[v1alpha1.ignore_def(base_path="src", patterns=["*.tmp"])])
        v1alpha1.kubernetes_discovery(
            name="kd", watches=[v1alpha1.kubernetes_watch_ref(name="p", namespace="ns")],
            extra_selectors=[v1alpha1.label_selector(match_labels={"app": "x"},
                match_expressions=[v1alpha1.label_selector_requirement(
                    key="tier", operator="In", values=["web"])])],
            port_forward_template_spec=v1alpha1.port_forward_template_spec(
                forwards=[v1alpha1.forward(local_port=8000, container_port=80)]))
        v1alpha1.kubernetes_apply(
            name="ka", yaml="kind: ConfigMap", timeout="45s", discovery_strategy="selectors-only",
            image_locators=[v1alpha1.kubernetes_image_locator(
                object_selector=v1alpha1.object_selector(kind_regexp="Foo"), path="{.spec.image}",
                object=v1alpha1.kubernetes_image_object_descriptor(repo_field="r", tag_field="t"))],
            apply_cmd=v1alpha1.kubernetes_apply_cmd(args=["./apply.sh"], dir="deploy"),
            pod_log_stream_template_spec=v1alpha1.pod_log_stream_template_spec(
                only_containers=["main"]),
            kubernetes_discovery_template_spec=v1alpha1.kubernetes_discovery_template_spec(
                extra_selectors=[{"match_labels": {"a": "b"}}]))
    """)
    specs = objects(result)
    base = str(tmp_path)
    assert specs[("ExtensionRepo", "default")] == {"url": "file:///ext", "ref": "main"}
    assert specs[("Extension", "hello")] == {"repoName": "default", "repoPath": "hello_world",
                                             "args": ["--x"]}
    assert specs[("ConfigMap", "flags")] == {"data": {"enabled": "true"}}
    assert specs[("Cmd", "seed")] == {
        "args": ["./seed.sh"], "dir": base, "env": ["A=1"],
        "readinessProbe": {"httpGet": {"port": 8080, "path": "/ready"}, "periodSeconds": 2},
        "startOn": {"uiButtons": ["seed-btn"]}, "restartOn": {"fileWatches": ["fw"]},
        "disableSource": {"configMap": {"name": "flags", "key": "enabled"}}}
    assert specs[("FileWatch", "fw")] == {
        "watchedPaths": [f"{base}/src"],
        "ignores": [{"basePath": f"{base}/src", "patterns": ["*.tmp"]}]}
    assert specs[("KubernetesDiscovery", "kd")] == {
        "watches": [{"name": "p", "namespace": "ns"}],
        "extraSelectors": [{"matchLabels": {"app": "x"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web"]}]}],
        "portForwardTemplateSpec": {"forwards": [{"localPort": 8000, "containerPort": 80}]}}
    ka = specs[("KubernetesApply", "ka")]
    assert ka["timeout"] == "45s" and ka["discoveryStrategy"] == "selectors-only"
    assert ka["imageLocators"] == [{"objectSelector": {"kindRegexp": "Foo"},
                                    "path": "{.spec.image}",
                                    "object": {"repoField": "r", "tagField": "t"}}]
    assert ka["applyCmd"] == {"args": ["./apply.sh"], "dir": f"{base}/deploy"}
    assert ka["podLogStreamTemplateSpec"] == {"onlyContainers": ["main"]}
    assert ka["kubernetesDiscoveryTemplateSpec"] == {"extraSelectors": [
        {"matchLabels": {"a": "b"}}]}
    labels = {o.name: o.labels for o in result.plan.extension_objects}
    assert labels["flags"] == (("team", "a"),)


def test_probe_accepts_a_handler_and_actions(tiltfile):
    result = tiltfile("""
        v1alpha1.cmd(name="a", args=["x"], readiness_probe=v1alpha1.probe(
            handler=v1alpha1.handler(tcp_socket=v1alpha1.tcp_socket_action(port=5432)),
            initial_delay_seconds=1))
        v1alpha1.cmd(name="b", args=["x"], readiness_probe=v1alpha1.probe(
            exec=v1alpha1.exec_action(command=["true"]),
            http_get=v1alpha1.http_get_action(port=1, http_headers=[
                v1alpha1.http_header(name="H", value="v")])))
    """)
    specs = objects(result)
    assert specs[("Cmd", "a")]["readinessProbe"] == {"tcpSocket": {"port": 5432},
                                                     "initialDelaySeconds": 1}
    assert specs[("Cmd", "b")]["readinessProbe"] == {
        "exec": {"command": ["true"]},
        "httpGet": {"port": 1, "httpHeaders": [{"name": "H", "value": "v"}]}}


@pytest.mark.parametrize("text, message", [
    ('v1alpha1.ui_button(text="x")', "v1alpha1.ui_button: missing argument for name"),
    ('v1alpha1.ui_button(name="")', "v1alpha1.ui_button: metadata.name: Required value"),
    ('v1alpha1.ui_button(name="b")\nv1alpha1.ui_button(name="b")',
     'v1alpha1.ui_button: uibuttons "b" already registered'),
    ('v1alpha1.ui_button(name="b", bogus=1)', "unexpected keyword argument 'bogus'"),
    ('v1alpha1.ui_button(name="b", text=1)', "for parameter 'text': got int, want string"),
    ('v1alpha1.ui_button(name="b", location={"component": "x"})',
     "for parameter 'location': unexpected attribute name: component"),
    ('v1alpha1.ui_button(name="b", location="nav")',
     "for parameter 'location': got string, want dict (UIComponentLocation)"),
    ('v1alpha1.ui_button(name="b", inputs=[{"name": "x", "text": {"default_value": 1}}])',
     "for parameter 'inputs': at index 0: text: default_value: got int, want string"),
    ('v1alpha1.ui_button(name="b", disabled="no")', "for parameter 'disabled': got string, want "
                                                    "bool"),
    ('v1alpha1.ui_button(name="b", labels={"a": 1})', "for parameter 'labels': got int, want "
                                                      "string"),
    ('v1alpha1.ui_text_input_spec(placeholder=3)', "v1alpha1.ui_text_input_spec: for parameter "
                                                   "'placeholder': got int, want string"),
    ('v1alpha1.forward(local_port="80")', "for parameter 'local_port': got string, want int"),
    ('v1alpha1.ui_component_location("a", "b", "c")', "got 3 arguments, want at most 2"),
    ('v1alpha1.ui_component_location("a", component_id="b")',
     "got multiple values for parameter 'component_id'"),
    ('v1alpha1.kubernetes_apply(name="k", timeout="soon")', "for parameter 'timeout': time: "
                                                             "invalid duration"),
    ('v1alpha1.cmd(name="c", args="x", env=3)', "for parameter 'env': got int, want list"),
    ('v1alpha1.config_map(name="c", data=["x"])', "for parameter 'data': got list, want dict"),
])
def test_v1alpha1_errors(tiltfile, text, message):
    error = error_of(tiltfile, "x = 1\n" + text + "\n")
    assert message in str(error)
    assert error.location is not None and error.location.line >= 2


def test_cmd_button_style_dicts_and_tilt_subcommand(tiltfile):
    """Extensions build buttons only outside `down`; positional name works too."""
    text = """
        if config.tilt_subcommand != "down":
            v1alpha1.ui_button("btn", location={"component_type": "Global",
                                                "component_id": "nav"}, text="Go")
    """
    assert len(tiltfile(text).plan.extension_objects) == 1
    assert tiltfile(text, subcommand="down").plan.extension_objects == ()
