"""Pushes: retried on temporary errors only, refusals explained, credentials passed and
never logged, and the bytes sent summed from the engine's progress stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devloop.build import registry as reg
from devloop.build.credentials import Credentials
from devloop.build.docker_builder import BuiltImage, PushError
from devloop.build.push import (
    Pusher,
    PushFailure,
    PushRetrySettings,
    PushStats,
    classify,
)


class FakePushApi:
    """docker.APIClient's tag/push: each push answers with the next scripted stream; a
    stream item {"raise": Exception} raises it instead, as the SDK does on an HTTP error."""

    def __init__(self, streams: list[list[dict[str, Any]]]) -> None:
        self.streams = list(streams)
        self.pushes: list[tuple[str, str | None, dict[str, str] | None]] = []
        self.tags: list[tuple[str, str, str | None]] = []

    def tag(self, image: str, repository: str, tag: str | None = None,
            force: bool = False) -> bool:
        self.tags.append((image, repository, tag))
        return True

    def push(self, repository: str, tag: str | None = None, stream: bool = False,
             auth_config: dict[str, str] | None = None, decode: bool = False
             ) -> Iterator[dict[str, Any]]:
        self.pushes.append((repository, tag, auth_config))
        for item in self.streams.pop(0):
            if "raise" in item:
                raise item["raise"]
            yield item


OK_STREAM: list[dict[str, Any]] = [
    {"status": "The push refers to repository [registry.example.com/app]"},
    {"status": "Preparing", "id": "aaa"}, {"status": "Preparing", "id": "bbb"},
    {"status": "Layer already exists", "id": "aaa"},
    {"status": "Pushing", "id": "bbb", "progressDetail": {"current": 512, "total": 2048}},
    {"status": "Pushing", "id": "bbb", "progressDetail": {"current": 2048, "total": 2048}},
    {"status": "Pushed", "id": "bbb"},
    {"status": "devloop-1: digest: sha256:abc size: 739"},
    {"aux": {"Tag": "devloop-1", "Digest": "sha256:abc", "Size": 739}},
]
IMAGE = BuiltImage(ref="registry.example.com/app:devloop-1", image_id="sha256:1",
                   repo="registry.example.com/app", tag="devloop-1")
REGISTRY = reg.Registry(host="registry.example.com")
SECRET = "hunter2-very-secret"


def error(message: str) -> list[dict[str, Any]]:
    return [{"status": "Preparing", "id": "aaa"},
            {"error": message, "errorDetail": {"message": message}}]


def make(streams: list[list[dict[str, Any]]], *, found: Credentials | None = None
         ) -> tuple[Pusher, FakePushApi, list[float]]:
    api = FakePushApi(streams)
    sleeps: list[float] = []
    pusher = Pusher(lambda: api, credentials=lambda host: found, retry=PushRetrySettings(),
                    sleep=sleeps.append)
    return pusher, api, sleeps


def push(pusher: Pusher) -> tuple[str, list[str]]:
    lines: list[str] = []
    result = pusher.push_blocking(IMAGE, REGISTRY, lines.append)
    return result.ref, lines


@pytest.mark.parametrize("message, failure", [
    ("dial tcp 192.0.2.10:443: connect: connection refused", PushFailure.TRANSIENT),
    ("read tcp 10.0.0.1:1->10.0.0.2:443: read: connection reset by peer",
     PushFailure.TRANSIENT),
    ("received unexpected HTTP status: 503 Service Unavailable", PushFailure.TRANSIENT),
    ("received unexpected HTTP status: 500 Internal Server Error", PushFailure.TRANSIENT),
    ("Put https://r/v2/app/blobs/uploads/x: EOF", PushFailure.TRANSIENT),
    ("net/http: TLS handshake timeout", PushFailure.TRANSIENT),
    ("unauthorized: authentication required", PushFailure.AUTH),
    ("no basic auth credentials", PushFailure.AUTH),
    ("denied: requested access to the resource is denied", PushFailure.AUTH),
    ('Get "https://r/v2/": x509: certificate signed by unknown authority', PushFailure.TLS),
    ("http: server gave HTTP response to HTTPS client", PushFailure.TLS),
    ("denied: Quota exceeded for quota metric", PushFailure.QUOTA),
    ("received unexpected HTTP status: 507 Insufficient Storage", PushFailure.QUOTA),
    ("toomanyrequests: You have reached your pull rate limit", PushFailure.RATE_LIMITED),
    ("An image does not exist locally with the tag: r/app", PushFailure.NOT_FOUND),
    ("blob unknown: sha256:4013a4015 unknown to registry", PushFailure.OTHER),
])
def test_push_errors_are_classified(message: str, failure: PushFailure) -> None:
    assert classify(message) is failure


def test_retry_delays_double_up_to_the_cap_and_rate_limits_wait_longer() -> None:
    retry = PushRetrySettings()
    assert [retry.delay(n, PushFailure.TRANSIENT) for n in (1, 2, 3, 4, 5)] == [
        1.0, 2.0, 4.0, 8.0, 8.0]
    assert retry.delay(1, PushFailure.RATE_LIMITED) == 4.0


def test_connection_refused_is_retried_with_backoff_until_it_works() -> None:
    pusher, api, sleeps = make([error("connect: connection refused"),
                                error("received unexpected HTTP status: 502 Bad Gateway"),
                                OK_STREAM])
    ref, lines = push(pusher)
    assert ref == "registry.example.com/app:devloop-1"
    assert sleeps == [1.0, 2.0]
    assert len(api.pushes) == 3
    assert any("retrying in 1s (attempt 2 of 4)" in line for line in lines)


def test_transient_errors_give_up_after_the_last_attempt_with_advice() -> None:
    pusher, api, sleeps = make([error("connect: connection refused")] * 4)
    with pytest.raises(PushError) as caught:
        push(pusher)
    assert len(api.pushes) == 4 and sleeps == [1.0, 2.0, 4.0]
    assert caught.value.temporary
    assert "Gave up after 4 attempts" in str(caught.value)
    assert "registry.example.com up" in str(caught.value)


def test_refused_credentials_are_not_retried_and_say_to_log_in() -> None:
    found = Credentials(host="registry.example.com", username="alice", password=SECRET,
                        source="auths['registry.example.com'] in /home/a/.docker/config.json")
    pusher, api, sleeps = make([error("unauthorized: authentication required")], found=found)
    with pytest.raises(PushError) as caught:
        push(pusher)
    assert sleeps == [] and len(api.pushes) == 1
    text = str(caught.value)
    assert "refused the credentials from auths['registry.example.com']" in text
    assert "docker login registry.example.com" in text
    assert SECRET not in text


def test_missing_credentials_say_which_config_has_none(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Any) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    pusher, _, _ = make([error("no basic auth credentials")])
    with pytest.raises(PushError, match=r"has none for it\. Run `docker login"):
        push(pusher)


def test_untrusted_certificate_points_at_docker_certs_d() -> None:
    pusher, _, sleeps = make([error("x509: certificate signed by unknown authority")])
    with pytest.raises(PushError) as caught:
        push(pusher)
    assert sleeps == []
    assert "/etc/docker/certs.d/registry.example.com/ca.crt" in str(caught.value)


def test_quota_refusal_says_to_free_space() -> None:
    pusher, _, _ = make([error("denied: Quota exceeded")])
    with pytest.raises(PushError, match="out of space or over its quota"):
        push(pusher)


def test_credentials_go_to_the_engine_and_never_to_the_log() -> None:
    found = Credentials(host="registry.example.com", username="alice", password=SECRET,
                        source="credential helper docker-credential-team")
    pusher, api, _ = make([OK_STREAM], found=found)
    _, lines = push(pusher)
    assert api.pushes[0][2] == {"username": "alice", "password": SECRET,
                                "serveraddress": "registry.example.com"}
    assert not any(SECRET in line for line in lines)
    assert "Using credentials for registry.example.com from credential helper " \
           "docker-credential-team" in lines


def test_credentials_are_looked_up_again_after_an_auth_refusal() -> None:
    asked: list[str] = []
    api = FakePushApi([error("unauthorized: authentication required"), OK_STREAM])

    def lookup(host: str) -> Credentials | None:
        asked.append(host)
        return None

    pusher = Pusher(lambda: api, credentials=lookup, sleep=lambda s: None)
    with pytest.raises(PushError):
        pusher.push_blocking(IMAGE, REGISTRY, lambda line: None)
    pusher.push_blocking(IMAGE, REGISTRY, lambda line: None)
    assert asked == ["registry.example.com", "registry.example.com"]


def test_only_changed_layers_count_as_sent() -> None:
    pusher, _, _ = make([OK_STREAM])
    _, lines = push(pusher)
    summary = [line for line in lines if line.startswith("Pushed registry.example.com/app")]
    assert len(summary) == 1
    assert "sent 1 of 2 layers (2.0 KB of layer content" in summary[0]
    assert "1 already in the registry" in summary[0]


def test_stats_take_the_highest_progress_of_each_layer() -> None:
    stats = PushStats()
    for item in [{"status": "Pushing", "id": "a", "progressDetail": {"current": 10}},
                 {"status": "Pushing", "id": "a", "progressDetail": {"current": 30}},
                 {"status": "Pushing", "id": "b", "progressDetail": {"current": 5}},
                 {"status": "Pushed", "id": "a"}, {"status": "Pushed", "id": "b"},
                 {"status": "Mounted from team/base", "id": "c"}]:
        stats.observe(item)
    stats.finish()
    assert (stats.bytes_read, stats.layers_pushed, stats.layers_mounted) == (35, 2, 1)


def test_image_is_tagged_into_the_registry_before_the_push() -> None:
    pusher, api, _ = make([OK_STREAM])
    local = BuiltImage(ref="app:devloop-1", image_id="sha256:1", repo="app", tag="devloop-1")
    result = pusher.push_blocking(local, REGISTRY, lambda line: None)
    assert api.tags == [("sha256:1", "registry.example.com/app", "devloop-1")]
    assert result.ref == "registry.example.com/app:devloop-1"
