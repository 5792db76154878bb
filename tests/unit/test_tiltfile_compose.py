"""docker_compose() and dc_resource(): Compose files parsed into a project and resources."""

from __future__ import annotations

import json

import pytest

from devloop.model import plan as p
from devloop.tiltfile.compose_area import (
    normalize_project_name,
    parse_dotenv,
    published_ports,
    service_dependencies,
)
from devloop.tiltfile.errors import TiltfileError

SHOP = """\
services:
  db:
    image: postgres:${PG_VERSION:-16}
    environment:
      POSTGRES_PASSWORD: $$secret
    volumes:
      - db-data:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD", "pg_isready"]
  api:
    build: ./api
    image: shop/api
    env_file: api.env
    depends_on:
      db:
        condition: service_healthy
    ports:
      - "8080:8080"
      - target: 9090
        published: 9091
  web:
    build:
      context: ./web
    depends_on: [api]
    ports:
      - "127.0.0.1:3000:3000/tcp"
      - "4000"
volumes:
  db-data: {}
"""
FILES = {"compose.yaml": SHOP, "api.env": "X=1\n", "api/Dockerfile": "FROM scratch\n",
         "web/Dockerfile": "FROM scratch\n"}


def fails(tiltfile, text, files=None) -> TiltfileError:
    with pytest.raises(TiltfileError) as info:
        tiltfile(text, files=files)
    return info.value


def test_a_realistic_three_service_project(tiltfile, tmp_path):
    result = tiltfile("""
        docker_build('shop/api', 'api')
        docker_build('shop-web', 'web')
        docker_compose('compose.yaml', project_name='Shop')
    """, files=FILES)
    plan = result.plan
    assert [(r.name, r.type, r.compose_service) for r in plan.resources] == [
        ("db", p.ResourceType.COMPOSE, "db"), ("api", p.ResourceType.COMPOSE, "api"),
        ("web", p.ResourceType.COMPOSE, "web")]
    db, api, web = plan.resources
    assert db.resource_deps == () and db.image_refs == () and db.links == ()
    assert api.resource_deps == ("db",)
    assert api.image_refs == ("shop/api",)
    assert api.links == (p.Link("http://localhost:8080/"), p.Link("http://localhost:9091/"))
    assert web.resource_deps == ("api",)
    assert web.image_refs == ("shop-web",)
    assert web.links == (p.Link("http://localhost:3000/"),)
    compose = plan.compose
    assert compose is not None
    assert compose.project_name == "shop"
    assert compose.config_paths == (str(tmp_path / "compose.yaml"),)
    assert compose.project_dir == str(tmp_path)
    services = json.loads(compose.services_json)
    assert list(services) == ["db", "api", "web"]
    assert services["db"]["image"] == "postgres:16"
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == "$secret"
    assert str(tmp_path / "compose.yaml") in plan.config_files
    assert str(tmp_path / "api.env") in plan.config_files


def test_project_name_defaults_to_the_directory_of_the_first_file(tiltfile):
    result = tiltfile("docker_compose(['My App/compose.yaml'], wait=True)\n",
                      files={"My App/compose.yaml": "services:\n  one:\n    image: busybox\n"})
    assert result.plan.compose is not None
    assert (result.plan.compose.project_name, result.plan.compose.wait) == ("myapp", True)


def test_variables_come_from_the_environment_then_the_env_file(tiltfile, monkeypatch):
    monkeypatch.setenv("DL_TAG", "from-shell")
    monkeypatch.delenv("DL_ONLY_FILE", raising=False)
    result = tiltfile("docker_compose('compose.yaml')\n", files={
        ".env": "DL_TAG=from-file\nDL_ONLY_FILE='quoted'  \n# comment\n",
        "compose.yaml": "services:\n  a:\n    image: app:${DL_TAG}\n"
                        "    command: echo ${DL_ONLY_FILE} ${DL_NONE:-dflt} ${DL_TAG:+set}\n"})
    assert result.plan.compose is not None
    service = json.loads(result.plan.compose.services_json)["a"]
    assert service == {"image": "app:from-shell", "command": "echo quoted dflt set"}


def test_an_explicit_env_file_replaces_dot_env_and_is_watched(tiltfile, tmp_path):
    result = tiltfile("docker_compose('compose.yaml', env_file='conf/dev.env')\n", files={
        "conf/dev.env": "DL_IMAGE_X=nginx\n",
        "compose.yaml": "services:\n  a:\n    image: ${DL_IMAGE_X}\n"})
    assert result.plan.compose is not None
    assert json.loads(result.plan.compose.services_json)["a"]["image"] == "nginx"
    assert result.plan.compose.env_file == str(tmp_path / "conf/dev.env")
    assert str(tmp_path / "conf/dev.env") in result.plan.config_files


def test_later_files_override_earlier_ones_and_calls_accumulate(tiltfile):
    result = tiltfile("""
        docker_compose(['base.yaml', 'override.yaml'])
        docker_compose('extra.yaml')
    """, files={
        "base.yaml": "services:\n  a:\n    image: a:1\n    ports: ['80:80']\n"
                     "    command: [run]\n",
        "override.yaml": "services:\n  a:\n    image: a:2\n    ports: ['81:81']\n"
                         "    command: [debug]\n",
        "extra.yaml": "services:\n  b:\n    image: b\n"})
    assert result.plan.compose is not None
    services = json.loads(result.plan.compose.services_json)
    assert services["a"] == {"image": "a:2", "ports": ["80:80", "81:81"], "command": ["debug"]}
    assert [r.name for r in result.plan.resources] == ["a", "b"]
    assert len(result.plan.compose.config_paths) == 3


def test_a_blob_is_accepted_as_compose_config(tiltfile):
    result = tiltfile("""
        docker_compose(local('cat compose.yaml', quiet=True, echo_off=True))
    """, files={"compose.yaml": "services:\n  solo:\n    image: redis\n"})
    assert [r.name for r in result.plan.resources] == ["solo"]
    assert result.plan.compose is not None
    assert result.plan.compose.config_paths[0].endswith(".yml")


@pytest.mark.parametrize(("call", "names"), [
    ("docker_compose('c.yaml')", ["always"]),
    ("docker_compose('c.yaml', profiles=['jobs'])", ["always", "worker"]),
    ("docker_compose('c.yaml', profiles='debug')", ["always", "debugger"]),
])
def test_profiles_select_services(tiltfile, call, names):
    result = tiltfile(call + "\n", files={"c.yaml": """
        services:
          always: {image: a}
          worker: {image: w, profiles: [jobs]}
          debugger: {image: d, profiles: [debug]}
    """})
    assert [r.name for r in result.plan.resources] == names


def test_dc_resource_configures_a_service(tiltfile):
    result = tiltfile("""
        docker_compose('compose.yaml')
        dc_resource('web', trigger_mode=TRIGGER_MODE_MANUAL, resource_deps=['migrate'],
                    links=[link('http://localhost:3000/admin', 'admin')], labels=['frontend'],
                    auto_init=False, infer_links=False)
        dc_resource('api', new_name='backend', labels='backend')
        local_resource('migrate', 'make migrate')
    """, files=FILES)
    web = result.plan.resource("web")
    assert web.trigger_mode == p.TriggerMode.MANUAL and web.auto_init is False
    assert web.labels == ("frontend",)
    assert web.links == (p.Link("http://localhost:3000/admin", "admin"),)
    assert web.resource_deps == ("backend", "migrate")
    backend = result.plan.resource("backend")
    assert backend.compose_service == "api" and backend.labels == ("backend",)


def test_dc_resource_image_names_the_image_tilt_builds(tiltfile):
    result = tiltfile("""
        docker_build('custom/img', 'web')
        docker_compose('compose.yaml')
        dc_resource('web', image='custom/img')
    """, files=FILES)
    assert result.plan.resource("web").image_refs == ("custom/img",)


@pytest.mark.parametrize(("text", "message", "line"), [
    ("docker_compose('compose.yaml')\ndc_resource('nope')",
     "dc_resource: no Docker Compose service found with name 'nope'. Found these "
     "instead: db; api; web", 2),
    ("dc_resource('db')", "dc_resource: no Docker Compose service found with name 'db'", 1),
    ("docker_compose('compose.yaml')\ndc_resource('')", "dc_resource: `name` must not be empty",
     2),
    ("docker_compose('compose.yaml')\ndc_resource('db', trigger_mode='manual')",
     "dc_resource: for parameter 'trigger_mode': got 'manual'", 2),
    ("docker_compose('compose.yaml')\ndc_resource('db', new_name='api')",
     "dc_resource: resource 'api' already exists", 2),
    ("docker_compose('compose.yaml')\ndc_resource('db', project_name='other')",
     "no Docker Compose service found with name 'db'", 2),
    ("docker_compose('compose.yaml')\ndc_resource('db', wrong=1)",
     "unexpected keyword argument 'wrong'", 2),
    ("docker_compose('missing.yaml')", "docker_compose: file not found: ", 1),
    ("docker_compose([])", "docker_compose: Nothing to compose", 1),
    ("docker_compose(3)", "docker_compose: for parameter 'configPaths': expected blob | path "
                          "(string). Actual type: int", 1),
    ("docker_compose('bad.yaml')", "bad.yaml:2:1: expected ',' or ']'", 1),
    ("docker_compose('list.yaml')", "want a mapping with a 'services' mapping", 1),
    ("docker_compose('required.yaml')",
     "required variable DL_MUST_BE_SET is missing a value: set it", 1),
    ("docker_compose('badimage.yaml')", "Error parsing image name 'Not Valid'", 1),
    ("docker_compose('compose.yaml')\ndocker_compose('list.yaml', project_name='x')",
     "only one Docker Compose project is supported", 2),
    ("docker_compose('compose.yaml', wait='yes')",
     "docker_compose: for parameter 'wait': got string, want bool", 1),
])
def test_compose_errors(tiltfile, text, message, line):
    error = fails(tiltfile, text + "\n", files=FILES | {
        "bad.yaml": "services: [unclosed\n", "list.yaml": "- a\n- b\n",
        "required.yaml": "services:\n  a:\n    image: ${DL_MUST_BE_SET:?set it}\n",
        "badimage.yaml": "services:\n  a:\n    image: Not Valid\n"})
    assert message in error.message
    assert error.location is not None and error.location.line == line


def test_unset_variables_warn_and_become_empty(tiltfile, monkeypatch):
    monkeypatch.delenv("DL_UNSET_VAR", raising=False)
    result = tiltfile("docker_compose('c.yaml')\n",
                      files={"c.yaml": "services:\n  a:\n    image: x${DL_UNSET_VAR}\n"})
    assert any("DL_UNSET_VAR" in warning for warning in result.plan.warnings)


# ---------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(("service", "ports"), [
    ({"ports": ["8080:80", "127.0.0.1:9000:9000/udp", "3000", 5000]}, [8080, 9000]),
    ({"ports": [{"target": 80, "published": "8081"}, {"target": 81}]}, [8081]),
    ({"ports": ["8000-8010:8000-8010"]}, []),
])
def test_published_ports(service, ports):
    assert published_ports(service) == ports


def test_service_dependencies_cover_every_compose_form():
    service = {"depends_on": {"db": {}}, "links": ["cache:redis"],
               "network_mode": "service:vpn", "volumes_from": ["data:ro", "container:x"]}
    assert service_dependencies(service) == ["db", "cache", "vpn", "data"]


def test_dotenv_and_project_name_rules():
    assert parse_dotenv("export A=1\nB='two words'\nC=x # note\n#D=4\n") == {
        "A": "1", "B": "two words", "C": "x"}
    assert normalize_project_name("_My.Project-1") == "myproject-1"


def test_a_build_section_no_build_replaces_is_an_image_target_named_as_tilt_does(tiltfile,
                                                                                  tmp_path):
    result = tiltfile("""
        docker_build('shop/api', 'api')
        docker_compose('compose.yaml', project_name='shop')
    """, files=FILES | {"compose.yaml": SHOP.replace(
        "      context: ./web\n",
        "      context: ./web\n      dockerfile: Dockerfile.dev\n      target: dev\n"
        "      args:\n        MODE: debug\n")})
    plan = result.plan
    assert [(image.ref, image.kind) for image in plan.images] == [
        ("shop/api", "docker_build"), ("shop_web", "docker_compose")]
    web = plan.image("shop_web")
    assert isinstance(web, p.DockerBuild)
    assert web.context == str(tmp_path / "web")
    assert web.dockerfile == str(tmp_path / "web" / "Dockerfile.dev")
    assert (web.target, web.build_args) == ("dev", (("MODE", "debug"),))
    assert plan.resource("web").image_refs == ("shop_web",)
    # api's build: is replaced by the docker_build that matches its image.
    assert plan.resource("api").image_refs == ("shop/api",)


def test_a_docker_build_named_like_compose_replaces_the_build_section(tiltfile):
    result = tiltfile("""
        docker_build('shop_web', 'web')
        docker_compose('compose.yaml', project_name='shop')
    """, files=FILES)
    assert [(image.ref, image.kind) for image in result.plan.images] == [
        ("shop_web", "docker_build"), ("shop/api", "docker_compose")]  # api names its image
    assert result.plan.resource("api").image_refs == ("shop/api",)
    assert result.plan.resource("web").image_refs == ("shop_web",)


def test_a_change_to_a_services_config_changes_only_that_resource(tiltfile, tmp_path):
    first = tiltfile("docker_compose('compose.yaml')\n", files=FILES).plan
    second = tiltfile("docker_compose('compose.yaml')\n", files=FILES | {
        "compose.yaml": SHOP.replace("    depends_on: [api]\n",
                                     "    depends_on: [api]\n    environment: {A: b}\n")}).plan
    changed = [r.name for r in second.resources if r != first.resource(r.name)]
    assert changed == ["web"]
