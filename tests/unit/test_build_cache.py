"""The key of a build's inputs and the file of earlier builds (devloop/build/build_cache.py)."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devloop.build import build_cache
from devloop.build.build_cache import BuildCache, EarlierBuilds, input_key
from devloop.build.docker_builder import BuiltImage
from devloop.model import plan as p

DOCKERFILE = "FROM python:3.11-slim AS base\nFROM base\nCOPY . /app\n"
TARGET = p.DockerBuild(ref="app", context=".", dockerfile="Dockerfile")


def engine(images: dict[str, str]) -> build_cache.ImageIdFn:
    async def image_id(ref: str) -> str | None:
        return images.get(ref)
    return image_id


async def key(target: p.DockerBuild = TARGET, *, digest: str = "sha256:ctx",
              text: str = DOCKERFILE, images: dict[str, str] | None = None) -> str | None:
    return await input_key(target, digest, text,
                           engine({"python:3.11-slim": "sha256:py1"} if images is None
                                  else images))


async def test_the_same_inputs_give_the_same_key_and_each_input_changes_it() -> None:
    first = await key()
    assert first is not None and first == await key()
    changed = [
        await key(digest="sha256:other"),
        await key(text=DOCKERFILE + "RUN true\n"),
        await key(images={"python:3.11-slim": "sha256:py2"}),  # a newer base was pulled
        await key(dataclasses.replace(TARGET, build_args=(("MODE", "dev"),))),
        await key(dataclasses.replace(TARGET, target="base")),
        await key(dataclasses.replace(TARGET, platform="linux/arm64")),
        await key(dataclasses.replace(TARGET, network="host")),
        await key(dataclasses.replace(TARGET, extra_hosts=("db:10.0.0.1",))),
    ]
    assert None not in changed
    assert len({first, *changed}) == len(changed) + 1


async def test_what_cannot_be_known_here_is_never_reused() -> None:
    assert await key(dataclasses.replace(TARGET, secret=("id=token",))) is None
    assert await key(dataclasses.replace(TARGET, ssh=("default",))) is None
    assert await key(dataclasses.replace(TARGET, pull=True)) is None
    assert await key(images={}) is None  # the build would pull the base
    assert await key(text="ARG BASE\nFROM $BASE\n") is None  # no value for the ARG


async def test_images_named_by_args_copied_from_or_mounted_count() -> None:
    text = ("ARG BASE=python:3.11-slim\nFROM $BASE\nCOPY --from=tools:1 /bin/t /bin/t\n"
            "RUN --mount=type=bind,from=assets:2,target=/a true\n")
    images = {"python:3.11-slim": "sha256:py", "tools:1": "sha256:t", "assets:2": "sha256:a"}
    first = await key(text=text, images=images)
    assert first is not None
    assert await key(text=text, images={**images, "assets:2": "sha256:a2"}) != first
    assert await key(text=text, images={**images, "tools:1": "sha256:t2"}) != first
    assert await key(text="FROM scratch\nCOPY . /\n", images={}) is not None


def test_the_file_keeps_the_newest_entries_and_survives_garbage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_cache, "MAX_ENTRIES", 3)
    path = tmp_path / "state" / "builds.json"
    cache = BuildCache(path)
    assert cache.get("k0") is None  # no file yet
    for i in range(5):
        cache.put(f"k{i}", f"sha256:{i}")
    assert [cache.get(f"k{i}") for i in range(5)] == [None, None, "sha256:2", "sha256:3",
                                                       "sha256:4"]
    assert sorted(q.name for q in path.parent.iterdir()) == ["builds.json"]  # no temp file
    cache.forget("k3")
    assert cache.get("k3") is None and cache.get("k4") == "sha256:4"
    path.write_text("{not json")
    assert cache.get("k4") is None
    cache.put("k5", "sha256:5")
    assert json.loads(path.read_text())["k5"]["image"] == "sha256:5"
    path.write_text(json.dumps({"k6": {"image": 6, "at": 1}, "k7": [], "k8": {"image": "x"}}))
    assert [cache.get(k) for k in ("k6", "k7", "k8")] == [None, None, None]


def test_a_home_that_cannot_be_written_costs_only_the_builds(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = BuildCache(blocker / "builds.json")  # its directory cannot be made
    cache.put("k", "sha256:1")
    assert cache.get("k") is None


class FakeBuilder:
    def __init__(self, images: dict[str, str]) -> None:
        self.images = images

    async def image_id(self, ref: str) -> str | None:
        return self.images.get(ref)

    async def reuse(self, target: p.DockerBuild, image_id: str, *,
                    registry: object = None) -> BuiltImage | None:
        if image_id not in self.images.values():
            return None
        return BuiltImage(ref=f"{target.ref}:devloop-{image_id[7:23]}", image_id=image_id,
                          repo=target.ref, tag=f"devloop-{image_id[7:23]}")


async def test_an_earlier_build_is_found_while_the_engine_has_its_image(
        tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    target = dataclasses.replace(TARGET, context=str(tmp_path))
    builder = FakeBuilder({"busybox": "sha256:bb"})
    cache = BuildCache(tmp_path / "builds.json")
    earlier = EarlierBuilds(builder, cache)  # type: ignore[arg-type]
    found_key = await earlier.key(target, "sha256:ctx")
    assert found_key is not None
    assert await earlier.find(target, found_key, None) is None  # nothing built yet
    built = BuiltImage(ref="app:devloop-1", image_id="sha256:" + "1" * 64, repo="app",
                       tag="devloop-1")
    await earlier.remember(found_key, built)
    builder.images["app:devloop-1"] = built.image_id
    found = await earlier.find(target, found_key, None)
    assert found is not None and found.image_id == built.image_id
    del builder.images["app:devloop-1"]  # docker image prune
    assert await earlier.find(target, found_key, None) is None
    assert cache.get(found_key) is None  # forgotten, not asked again


def test_the_cache_can_be_turned_off() -> None:
    assert not build_cache.enabled({"DEVLOOP_BUILD_CACHE": "0"})
    assert build_cache.enabled({}) and build_cache.enabled({"DEVLOOP_BUILD_CACHE": "1"})


def test_builds_recorded_at_once_from_several_threads_are_all_kept(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path / "builds.json")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: cache.put(f"k{i}", f"sha256:{i}"), range(40)))
    assert [cache.get(f"k{i}") for i in range(40)] == [f"sha256:{i}" for i in range(40)]
