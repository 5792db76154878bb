"""Tiltfiles written the way public projects write them must evaluate unchanged.

Each test is a whole Tiltfile in the style found in open-source repositories: helper files
loaded in a chain, config args selecting groups of services, data files with defaults,
string formatting, environment edits. The last tests use docker_build/k8s_yaml (noted there).
"""

from __future__ import annotations

import json

MONOREPO = """
# -*- mode: Python -*-
load("./tilt/services.star", "SERVICES", "service_cmd")

config.define_string_list("to-run", args=True)
config.define_bool("debug", False, "verbose logging for every service")
cfg = config.parse()

groups = {
    "backend": ["api", "worker"],
    "frontend": ["web"],
}
resources = []
for arg in cfg.get("to-run", []):
    if arg in groups:
        resources += groups[arg]
    else:
        # also support naming single services: `devloop up -- api web`
        resources.append(arg)
config.set_enabled_resources(resources)

debug = cfg.get("debug", False)
for name in SERVICES:
    local_resource(
        name,
        serve_cmd=service_cmd(name, debug),
        labels=["backend" if name != "web" else "frontend"],
    )
"""

SERVICES_STAR = """
load("./common.star", "PORTS")

SERVICES = sorted(PORTS.keys())

def service_cmd(name, debug):
    flags = " --verbose" if debug else ""
    return "python -m http.server %d%s" % (PORTS[name], flags)
"""

COMMON_STAR = """
PORTS = {"api": 8000, "worker": 8001, "web": 3000}
"""


def _monorepo_files() -> dict[str, str]:
    return {"tilt/services.star": SERVICES_STAR, "tilt/common.star": COMMON_STAR}


def test_monorepo_with_groups_selected_by_args(tiltfile):
    result = tiltfile(MONOREPO, files=_monorepo_files(), args=("backend", "--debug"))
    plan = result.plan
    assert [r.name for r in plan.resources] == ["api", "web", "worker"]
    assert plan.enabled_resources == ("api", "worker")
    assert plan.resource("api").serve_cmd is not None
    assert "8000 --verbose" in " ".join(plan.resource("api").serve_cmd.argv)


def test_monorepo_without_args_enables_everything(tiltfile):
    plan = tiltfile(MONOREPO, files=_monorepo_files()).plan
    assert plan.enabled_resources is None
    assert "--verbose" not in " ".join(plan.resource("web").serve_cmd.argv)


HELPERS_TILTFILE = """
load("./tilt/naming.star", "image_name", "DEFAULTS")

settings = read_yaml("tilt-settings.yaml", default={})
registry = settings.get("registry", DEFAULTS.registry)
tag = getattr(DEFAULTS, "tag", "latest")
missing = getattr(DEFAULTS, "nope", "fallback")
print("{}/{}:{}".format(registry, image_name("api"), tag), missing)

# Go templates need literal braces.
fmt = "{{{{.Names}}}} for {name}".format(name="api")
print(fmt)
print("%s has %d replicas (%d%%)" % ("api", 3, 99))

greeting = str(local("echo hi")).strip()
print("local said " + greeting)

os.environ["DEVLOOP_REALISTIC_X"] = "y"
print(os.getenv("DEVLOOP_REALISTIC_X"), os.environ.get("DEVLOOP_REALISTIC_MISSING", "-"))

if os.path.exists("services/api/Tiltfile"):
    include("./services/api/Tiltfile")

def service_config(name):
    # A local that shadows the config module, as helper functions often do.
    config = settings.get("services", {}).get(name, {"replicas": 1})
    return config

print(service_config("api"))
config.define_string("env")
print(config.parse().get("env", "dev"))
"""

NAMING_STAR = """
load("./base.star", "PREFIX")

DEFAULTS = struct(registry="localhost:5000", tag="dev")

def image_name(service):
    return "%s-%s" % (PREFIX, service)
"""


def test_helpers_formatting_local_environ_include_and_shadowed_config(tiltfile):
    result = tiltfile(HELPERS_TILTFILE, files={
        "tilt/naming.star": NAMING_STAR,
        "tilt/base.star": 'PREFIX = "shop"\n',
        "services/api/Tiltfile": """
            print("api Tiltfile from " + os.path.basename(os.getcwd()))
            local_resource("api-tests", cmd="echo test")
            # A variable named like the module, at the end of an included file.
            config = {"owner": "api-team"}
        """,
    })
    out = result.output
    assert "localhost:5000/shop-api:dev fallback" in out
    assert "{{.Names}} for api" in out
    assert "api has 3 replicas (99%)" in out
    assert "local said hi" in out
    assert "y -" in out
    assert "api Tiltfile from api" in out
    assert '{"replicas": 1}' in out
    assert out[-1] == "dev"
    assert [r.name for r in result.plan.resources] == ["api-tests"]


def test_settings_file_overrides_defaults_when_present(tiltfile, tmp_path):
    result = tiltfile(HELPERS_TILTFILE, files={
        "tilt/naming.star": NAMING_STAR,
        "tilt/base.star": 'PREFIX = "shop"\n',
        "services/api/Tiltfile": 'print("api")\n',
        "tilt-settings.yaml": "registry: registry.example:5000\nservices:\n  api:\n"
                              "    replicas: 3\n",
    }, args=("--env", "staging"))
    out = result.output
    assert "registry.example:5000/shop-api:dev fallback" in out
    assert '{"replicas": 3}' in out
    assert out[-1] == "staging"
    assert str(tmp_path / "tilt-settings.yaml") in result.plan.config_files


def test_include_guarded_by_exists_tolerates_a_missing_file(tiltfile):
    result = tiltfile("""
        if os.path.exists("optional/Tiltfile"):
            include("./optional/Tiltfile")
        print("done")
    """)
    assert result.output == ("done",)


def test_loaded_library_exporting_config_named_value(tiltfile):
    """A helper file whose last statement binds `config`; the Tiltfile loads it under an
    alias and keeps using the config module."""
    result = tiltfile("""
        load("./lib.star", app_config="config")
        config.define_string("mode")
        cfg = config.parse()
        print(app_config["name"], cfg.get("mode", app_config["mode"]))
    """, files={"lib.star": 'config = {"name": "shop", "mode": "fast"}\n'})
    assert result.output == ("shop fast",)


def test_extension_style_buttons_and_settings(tiltfile):
    """What extensions such as uibutton or a team's shared Tiltfile do at load time."""
    result = tiltfile("""
        update_settings(max_parallel_updates=2, k8s_upsert_timeout_secs=60)
        ci_settings(timeout="15m")
        watch_settings(ignore=["**/*.pyc", "tmp/"])
        version_settings(constraint=">=0.30.0")

        def cmd_button(name, resource, argv, text=None, icon_name=None):
            if config.tilt_subcommand == "down":
                return
            v1alpha1.ui_button(
                name=name,
                annotations={"tilt.dev/resource": resource},
                location={"component_type": "Resource", "component_id": resource},
                text=text or name,
                icon_name=icon_name or "",
            )
            v1alpha1.cmd(name="btn-" + name, args=argv,
                         start_on=v1alpha1.start_on_spec(ui_buttons=[name]))

        local_resource("db", serve_cmd="sleep 1000")
        cmd_button("db-reset", "db", ["sh", "-c", "echo reset"], icon_name="refresh")
    """)
    plan = result.plan
    assert plan.settings.update.max_parallel_updates == 2
    assert plan.settings.ci.timeout_secs == 900
    assert plan.settings.watch.ignore == ("**/*.pyc", "tmp/")
    kinds = [(o.kind, o.name) for o in plan.extension_objects]
    assert kinds == [("UIButton", "db-reset"), ("Cmd", "btn-db-reset")]
    button = json.loads(plan.extension_objects[0].spec_json)
    assert button["location"] == {"componentType": "Resource", "componentID": "db"}
    assert button["iconName"] == "refresh"


# ---------------------------------------------------------------------------- with images and k8s
# These use docker_build / k8s_yaml / k8s_resource from the docker and kubernetes areas.

K8S_TILTFILE = """
values = read_yaml("deploy/values.yaml", default={"replicas": 1, "port": 8000})

def deployment(name, image, port):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": values["replicas"],
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": name, "image": image,
                    "ports": [{"containerPort": port}],
                }]},
            },
        },
    }

docker_build("shop/api", "services/api")
k8s_yaml(encode_yaml(deployment("api", "shop/api", values["port"])))
k8s_resource("api", port_forwards="%d:%d" % (values["port"] + 1, values["port"]),
             labels=["backend"])
"""


def test_generated_manifests_with_data_files(tiltfile):
    result = tiltfile(K8S_TILTFILE, files={
        "services/api/Dockerfile": "FROM scratch\n",
        "deploy/values.yaml": "replicas: 2\nport: 9000\n",
    })
    plan = result.plan
    api = plan.resource("api")
    assert api.image_refs and "shop/api" in api.image_refs[0]
    manifest = api.objects[0].manifest()
    assert manifest["spec"]["replicas"] == 2
    assert api.port_forwards[0].local_port == 9001
    assert api.port_forwards[0].container_port == 9000
