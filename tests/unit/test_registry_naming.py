"""Registry discovery and the names images are pushed and pulled by (Tilt's rules)."""

from __future__ import annotations

from typing import Any

import pytest

from devloop.build import registry as reg
from devloop.build.custom_builder import build_env, expected_ref, needs_push
from devloop.build.docker_builder import content_tag
from devloop.model import plan


@pytest.mark.parametrize(
    ("host", "ref", "expected"),
    [
        ("myreg.com", "gcr.io/foo/bar", "myreg.com/gcr.io_foo_bar"),
        ("myreg.com", "gcr.io/foo/bar:deadbeef", "myreg.com/gcr.io_foo_bar:deadbeef"),
        ("aws_account_id.dkr.ecr.region.amazonaws.com/bar", "gcr.io/baz/foo/bar",
         "aws_account_id.dkr.ecr.region.amazonaws.com/bar/gcr.io_baz_foo_bar"),
        ("gcr.io/foo", "docker.io/library/busybox", "gcr.io/foo/busybox"),
        ("gcr.io/foo", "bar", "gcr.io/foo/bar"),
        ("myreg.com", "myreg.com/bar", "myreg.com/bar"),  # already in the registry
        ("myreg.com:5000", "myreg.com:5000/bar", "myreg.com:5000/bar"),
        ("myreg.com:5000", "myreg.com/bar", "myreg.com:5000/myreg.com_bar"),
        ("myreg.com", "myreg.com:5000/bar", "myreg.com/myreg.com_5000_bar"),
        ("localhost:5000", "example.com/team/app:v1", "localhost:5000/example.com_team_app:v1"),
    ],
)
def test_replace_registry_escapes_like_tilt(host, ref, expected):
    assert reg.replace_registry(ref, reg.Registry(host=host)) == expected


def test_no_registry_keeps_the_familiar_name():
    assert reg.replace_registry("docker.io/library/redis:7", None) == "redis:7"
    assert reg.local_name("example.com/app:1", None) == "example.com/app"


@pytest.mark.parametrize(
    ("host", "runtime", "ref", "local", "cluster"),
    [
        ("myreg.com", "", "gcr.io/foo/bar", "myreg.com/gcr.io_foo_bar",
         "myreg.com/gcr.io_foo_bar"),
        ("localhost:1234", "registry:1234", "gcr.io/foo/bar",
         "localhost:1234/gcr.io_foo_bar", "registry:1234/gcr.io_foo_bar"),
    ],
)
def test_cluster_ref_uses_host_from_container_runtime(host, runtime, ref, local, cluster):
    registry = reg.Registry(host=host, host_from_container_runtime=runtime)
    assert reg.local_name(ref, registry) == local
    assert reg.cluster_name(ref, registry) == cluster
    assert reg.cluster_ref_for_local(f"{local}:t", registry) == f"{cluster}:t"


def test_single_name_moves_the_image_name_into_the_tag():
    registry = reg.Registry(host="123.dkr.ecr.aws.com", single_name="dev")
    assert reg.local_name("gcr.io/foo/bar", registry) == "123.dkr.ecr.aws.com/dev"
    assert reg.tag_for("gcr.io/foo/bar", "devloop-abc", registry) == "bar-devloop-abc"
    assert reg.tag_for("gcr.io/foo/bar", "devloop-abc", None) == "devloop-abc"


@pytest.mark.parametrize(
    ("ref", "name", "tag", "digest"),
    [
        ("busybox", "busybox", "", ""),
        ("localhost:5000/app", "localhost:5000/app", "", ""),
        ("localhost:5000/app:v2", "localhost:5000/app", "v2", ""),
        ("app@sha256:abc", "app", "", "sha256:abc"),
    ],
)
def test_parse_ref_tells_ports_from_tags(ref, name, tag, digest):
    assert reg.parse_ref(ref) == reg.ImageRef(name, tag, digest)


def test_content_tag_is_first_16_hex_of_the_image_id():
    assert content_tag("sha256:0123456789abcdef0123") == "devloop-0123456789abcdef"


class FakeConfigMaps:
    def __init__(self, data: dict[str, str] | None) -> None:
        self.data = data

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        assert (namespace, name) == ("kube-public", "local-registry-hosting")
        return None if self.data is None else {"data": self.data}


async def test_registry_is_discovered_from_kep_1755_configmap():
    cm = FakeConfigMaps({"localRegistryHosting.v1": (
        'host: "localhost:5000"\nhostFromContainerRuntime: "registry:5000"\n'
        'hostFromClusterNetwork: "kind-registry:5000"\nhelp: "https://x"\n')})
    found, note = await reg.discover_registry(cm, plan.Settings())
    assert found == reg.Registry("localhost:5000", "registry:5000", "kind-registry:5000",
                                 help="https://x")
    assert "localhost:5000" in note


async def test_cluster_registry_wins_over_default_registry_like_tilt():
    cm = FakeConfigMaps({"localRegistryHosting.v1": "host: localhost:5000\n"})
    found, note = await reg.discover_registry(cm, plan.Settings(default_registry="gcr.io/me"))
    assert found is not None and found.host == "localhost:5000"
    assert "ignored" in note


@pytest.mark.parametrize("data", [None, {}, {"localRegistryHosting.v1": "help: only"},
                                  {"localRegistryHosting.v1": ": not yaml : ["}])
async def test_default_registry_applies_without_an_advertised_one(data):
    settings = plan.Settings(default_registry="gcr.io/me", default_registry_single_name="one")
    found, _ = await reg.discover_registry(FakeConfigMaps(data), settings)
    assert found == reg.Registry(host="gcr.io/me", single_name="one")
    assert (await reg.discover_registry(FakeConfigMaps(data), plan.Settings()))[0] is None


@pytest.mark.parametrize(
    ("context", "docker_host", "shared"),
    [
        ("docker-desktop", "", True),
        ("docker-desktop", "unix:///var/run/docker.sock", True),
        ("docker-desktop", "tcp://10.0.0.2:2376", False),
        ("kind-kind", "", False),
        ("devloop-testenv", "", False),
    ],
)
def test_cluster_shares_local_docker_only_for_desktop_clusters(context, docker_host, shared):
    assert reg.cluster_shares_local_docker(context, docker_host) is shared


def _custom(**kwargs) -> plan.CustomBuild:
    return plan.CustomBuild(ref="gcr.io/team/app", command=("make",), shell=False, deps=(),
                            **kwargs)


def test_custom_build_expected_ref_and_env_like_tilt():
    registry = reg.Registry(host="localhost:5000")
    ref = expected_ref(_custom(), registry, now=1700000000.4)
    assert ref == "localhost:5000/gcr.io_team_app:devloop-build-1700000000"
    env = build_env(_custom(env=(("A", "1"),), image_deps=("base",)), registry, ref,
                    {"base": "localhost:5000/base:devloop-1"}, {"PATH": "/bin"})
    assert env["EXPECTED_REF"] == ref
    assert env["EXPECTED_REGISTRY"] == env["REGISTRY_HOST"] == "localhost:5000"
    assert env["EXPECTED_IMAGE"] == "gcr.io_team_app"
    assert env["EXPECTED_TAG"] == "devloop-build-1700000000"
    assert env["TILT_IMAGE_MAP_0"] == "base"
    assert env["TILT_IMAGE_0"] == "localhost:5000/base:devloop-1"
    assert env["A"] == "1" and env["PATH"] == "/bin"


def test_custom_build_with_tag_does_not_know_the_registry():
    registry = reg.Registry(host="localhost:5000")
    assert expected_ref(_custom(tag="dev"), registry, now=0) == "gcr.io/team/app:dev"


@pytest.mark.parametrize(
    ("kwargs", "has_registry", "shares", "push"),
    [
        ({}, True, False, True),
        ({}, False, False, False),
        ({}, True, True, False),
        ({"disable_push": True}, True, False, False),
        ({"skips_local_docker": True}, True, False, False),
    ],
)
def test_custom_build_push_decision(kwargs, has_registry, shares, push):
    registry = reg.Registry(host="localhost:5000") if has_registry else None
    assert needs_push(_custom(**kwargs), registry, shares) is push
