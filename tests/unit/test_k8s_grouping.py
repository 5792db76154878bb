"""Pure Kubernetes helpers: YAML parsing, image references, JSONPaths, grouping rules."""

from __future__ import annotations

import pytest
from k8s_support import FIXTURES

from devloop.k8s import grouping, images
from devloop.k8s.objects import YAMLError, parse_objects, to_object, to_yaml


def obj(kind: str, name: str, namespace: str = "", api_version: str = "v1", **body):
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return to_object({"apiVersion": api_version, "kind": kind, "metadata": metadata, **body})


def workload(name: str, labels: dict, namespace: str = "", **spec):
    template = {"metadata": {"labels": labels}, "spec": {"containers": [], **spec}}
    return obj("Deployment", name, namespace, "apps/v1", spec={"template": template})


# ---------------------------------------------------------------------------- YAML


def test_parse_objects_reads_a_stream_in_order():
    shop = parse_objects((FIXTURES / "shop.yaml").read_text(), "shop.yaml")
    assert [o.kind for o in shop][:3] == ["Namespace", "ConfigMap", "Deployment"]
    assert shop[2].key == "frontend:deployment.apps:default"


def test_parse_errors_name_the_source_and_line():
    with pytest.raises(YAMLError, match=r"^app.yaml: YAML parse error at line 3"):
        parse_objects("a: 1\nb: 2\n  c: 3\n", "app.yaml")
    with pytest.raises(YAMLError, match=r"app.yaml: ConfigMap at line 2 has no 'metadata.name'"):
        parse_objects("---\napiVersion: v1\nkind: ConfigMap\n", "app.yaml")


def test_to_yaml_round_trips():
    objects = [obj("ConfigMap", "a", data={"k": "v"}), obj("Secret", "b", "ns")]
    assert parse_objects(to_yaml(objects), "x") == objects
    assert to_yaml([]) == ""


# ---------------------------------------------------------------------------- image refs


@pytest.mark.parametrize("text, name, tag", [
    ("redis", "docker.io/library/redis", ""),
    ("redis:7", "docker.io/library/redis", "7"),
    ("shop/api", "docker.io/shop/api", ""),
    ("gcr.io/shop/api:v1", "gcr.io/shop/api", "v1"),
    ("localhost:5000/api", "localhost:5000/api", ""),
    ("localhost/api", "localhost/api", ""),
])
def test_parse_ref_normalises_like_docker(text, name, tag):
    ref = images.parse_ref(text)
    assert ref is not None and (ref.name, ref.tag) == (name, tag)


@pytest.mark.parametrize("text", ["", "has space", "a/UPPER", "a/b:bad tag", "x:"])
def test_parse_ref_rejects_non_references(text):
    assert images.parse_ref(text) is None


@pytest.mark.parametrize("build, found, expected", [
    ("shop/api", "shop/api:abc", True),
    ("shop/api", "docker.io/shop/api", True),
    ("shop/api", "shop/api@sha256:" + "a" * 64, True),
    ("shop/api", "gcr.io/shop/api", False),
    ("shop/api", "shop/api-worker", False),
    ("shop/api:v1", "shop/api:v1", True),
    ("shop/api:v1", "shop/api:v2", False),
    ("redis", "library/redis:7", True),
])
def test_ref_matching(build, found, expected):
    assert images.ref_matches(build, found) is expected


# ---------------------------------------------------------------------------- JSONPath


def test_jsonpath_parse_format_get_set():
    data = {"spec": {"a.b": [{"image": "x"}, {"image": "y"}]}}
    steps = images.parse_path("{.spec['a.b'][*].image}")
    assert steps == ["spec", "a.b", "*", "image"]
    assert [images.format_path(s) for s, _ in images.expand_path(data, steps)] == [
        "{.spec['a.b'][0].image}", "{.spec['a.b'][1].image}"]
    images.set_path(data, "{.spec['a.b'][1].image}", "z")
    assert images.get_path(data, ".spec['a.b'][1].image") == "z"
    with pytest.raises(ValueError, match="invalid JSONPath"):
        images.parse_path("{.spec[}")


def test_find_images_in_every_workload_kind():
    shop = {o.name: o for o in parse_objects(
        (FIXTURES / "shop.yaml").read_text() + "---\n"
        + (FIXTURES / "environment-crd.yaml").read_text(), "x") if o.kind != "Service"}
    api = images.find_images(shop["api"].manifest(), env_refs=["shop/worker"])
    assert [(f.json_path, f.ref, f.in_env) for f in api] == [
        ("{.spec.template.spec.initContainers[0].image}", "busybox:1.36", False),
        ("{.spec.template.spec.containers[0].image}", "gcr.io/shop/api", False),
        ("{.spec.template.spec.containers[0].env[1].value}", "shop/worker", True)]
    assert [f.json_path for f in images.find_images(shop["nightly-report"].manifest())] == [
        "{.spec.jobTemplate.spec.template.spec.containers[0].image}"]
    assert [f.ref for f in images.find_images(shop["migrate"].manifest())] == [
        "gcr.io/shop/api:latest"]
    assert images.find_images(shop["preview"].manifest()) == []
    assert [f.ref for f in images.find_images(shop["preview"].manifest(),
                                              ["{.spec.runtime.image}"])] == [
        "shop/preview-runner"]
    pod = {"kind": "Pod", "spec": {"containers": [{"image": "nginx"}]}}
    assert images.find_images(pod)[0].json_path == "{.spec.containers[0].image}"


# ---------------------------------------------------------------------------- names


def test_unique_names_take_the_shortest_unambiguous_form():
    objects = [obj("Deployment", "web", "a", "apps/v1"), obj("Deployment", "web", "b", "apps/v1"),
               obj("Job", "web", "a", "batch/v1"), obj("Deployment", "api", "", "apps/v1")]
    assert grouping.unique_names(objects) == [
        "web:deployment:a", "web:deployment:b", "web:job", "api"]


def test_unique_names_fail_on_true_duplicates():
    objects = [obj("Deployment", "web", api_version="apps/v1")] * 2
    with pytest.raises(grouping.GroupingError, match="Duplicate YAML Entity"):
        grouping.unique_names(objects)


@pytest.mark.parametrize("fragment, expected", [
    ("web", [0, 1]), ("WEB:service", [1]), ("web:deployment:prod", [0]),
    ("web:deployment:default", []), ("other", []),
])
def test_fragment_matches(fragment, expected):
    objects = [obj("Deployment", "web", "prod", "apps/v1"), obj("Service", "web", "prod")]
    assert grouping.fragment_matches(objects, fragment) == expected


# ---------------------------------------------------------------------------- relations


def test_services_attach_by_selector_within_the_namespace():
    web = workload("web", {"app": "web", "tier": "fe"}, namespace="shop")
    objects = [web,
               obj("Service", "web", "shop", spec={"selector": {"app": "web"}}),
               obj("Service", "empty", "shop", spec={"selector": {}}),
               obj("Service", "other", "shop", spec={"selector": {"app": "web", "x": "y"}}),
               obj("Service", "elsewhere", "prod", spec={"selector": {"app": "web"}}),
               # Tilt lets a Service of the default namespace join a workload of any one.
               obj("Service", "unscoped", spec={"selector": {"app": "web"}}),
               obj("Service", "explicit-default", "default", spec={"selector": {"app": "web"}}),
               obj("Service", "custom-group", "shop", "example.com/v1",
                   spec={"selector": {"app": "web"}})]
    assert grouping.related(web, range(1, len(objects)), objects) == [1, 5, 6]


def test_only_services_attach_like_tilt():
    web = workload("web", {"app": "web"},
                   volumes=[{"name": "c", "configMap": {"name": "cfg"}},
                            {"name": "s", "secret": {"secretName": "tls"}},
                            {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
                   imagePullSecrets=[{"name": "pull"}])
    objects = [web, obj("ConfigMap", "cfg"), obj("Secret", "tls"),
               obj("PersistentVolumeClaim", "data"), obj("Secret", "pull"),
               obj("Service", "web", spec={"selector": {"app": "web"}}),
               obj("Ingress", "in", api_version="networking.k8s.io/v1",
                   spec={"defaultBackend": {"service": {"name": "web"}}})]
    assert grouping.related(web, range(1, len(objects)), objects) == [5]


def test_a_bare_pod_takes_no_service():
    pod = obj("Pod", "p", spec={"containers": [{"name": "c", "image": "nginx"}]})
    pod = to_object({**pod.manifest(), "metadata": {"name": "p", "labels": {"app": "p"}}})
    objects = [pod, obj("Service", "p", spec={"selector": {"app": "p"}})]
    assert grouping.related(pod, [1], objects) == []


def test_group_workloads_first_workload_wins_shared_objects_and_reserved_stay_out():
    a = workload("a", {"app": "x"})
    b = workload("b", {"app": "x"})
    objects = [obj("Namespace", "ns"), a, b,
               obj("Service", "shared", spec={"selector": {"app": "x"}}),
               obj("Service", "svc", spec={"selector": {"app": "x"}})]
    groups, leftover = grouping.group_workloads(objects, [1, 2], ["a", "b"], reserved=[4])
    assert [(g.name, g.objects) for g in groups] == [("a", [1, 3]), ("b", [2])]
    assert leftover == [0, 4]
