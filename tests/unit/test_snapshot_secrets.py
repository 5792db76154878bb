"""Snapshot scrubbing: the values of the session's Kubernetes Secrets never reach the file."""

from __future__ import annotations

import base64
import json

import yaml

from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.model import plan as p
from devloop.snapshot.gather import snapshot_data, take
from devloop.snapshot.secrets import Scrubber, SecretValue, secrets_in_manifest, secrets_in_yaml


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRET = {"apiVersion": "v1", "kind": "Secret",
          "metadata": {"name": "db", "namespace": "shop"},
          "data": {"password": b64("hunter2-prod")},
          "stringData": {"token": "tok-7f3a9"}}


def test_secret_values_come_from_data_and_string_data():
    values = {(s.key, s.value) for s in secrets_in_manifest(SECRET)}
    assert values == {("password", "hunter2-prod"), ("token", "tok-7f3a9")}
    assert secrets_in_manifest({"kind": "ConfigMap", "data": {"a": b64("visible")}}) == []


def test_secrets_are_found_in_applied_yaml_among_other_objects():
    text = yaml.safe_dump_all([{"kind": "Deployment", "metadata": {"name": "x"}}, SECRET])
    assert len(secrets_in_yaml(text)) == 2
    assert secrets_in_yaml("{ not yaml") == []


def test_scrubber_replaces_the_value_and_its_base64_form_with_a_label():
    scrub = Scrubber(secrets_in_manifest(SECRET))
    assert scrub.text("login with hunter2-prod") == (
        "login with [redacted secret shop/db:password]")
    assert "aHVudGVy" not in scrub.text(f"data: {b64('hunter2-prod')}")
    assert scrub.data({"env": ["tok-7f3a9"], "tok-7f3a9": 1}) == {
        "env": ["[redacted secret shop/db:token]"], "[redacted secret shop/db:token]": 1}


def test_each_line_of_a_multi_line_secret_is_scrubbed():
    key = "-----BEGIN KEY-----\nMIIEpAIBAAKCAQEA\n-----END KEY-----"
    scrub = Scrubber([SecretValue("", "tls", "key", key)])
    assert "MIIEpAIBAAKCAQEA" not in scrub.text("read MIIEpAIBAAKCAQEA from disk")
    assert "[redacted secret default/tls:key]" in scrub.text(key)


def test_values_too_short_to_scrub_are_left_alone():
    scrub = Scrubber([SecretValue("", "s", "pin", "42")])
    assert not scrub and scrub.text("port 4242") == "port 4242"


def _plan(*, disable_scrub: bool = False) -> p.Plan:
    secret = p.K8sObject("v1", "Secret", "db", "shop", json.dumps(SECRET))
    resource = p.Resource(name="db", type=p.ResourceType.K8S, objects=(secret,))
    settings = p.Settings(secrets=p.SecretSettings(disable_scrub=disable_scrub))
    return p.Plan(tiltfile="/project/Tiltfile", resources=(resource,), settings=settings)


def _session() -> tuple[Store, LogStore]:
    store, logs = Store(), LogStore()
    applied = yaml.safe_dump_all([{**SECRET, "stringData": {"extra": "applied-only-9"}}])
    store.put("resource", "db", spec={"type": "k8s"},
              status={"details": {"appliedYaml": applied}})
    logs.append("db", "connecting as admin:hunter2-prod")
    logs.append("db", "extra is applied-only-9, token tok-7f3a9")
    return store, logs


def test_snapshot_data_holds_no_secret_value_in_objects_or_logs():
    store, logs = _session()
    data = snapshot_data(take(store, logs, _plan(), now=1.0))
    text = json.dumps(data)
    for value in ("hunter2-prod", b64("hunter2-prod"), "tok-7f3a9", "applied-only-9"):
        assert value not in text
    assert [line["text"] for line in data["logs"]] == [
        "connecting as admin:[redacted secret shop/db:password]",
        "extra is [redacted secret shop/db:extra], token [redacted secret shop/db:token]"]
    assert data["scrub"] == {"disabled": False, "values": 6}


def test_disable_scrub_keeps_the_values_as_tilt_does():
    store, logs = _session()
    data = snapshot_data(take(store, logs, _plan(disable_scrub=True), now=1.0))
    assert data["logs"][0]["text"] == "connecting as admin:hunter2-prod"
    assert data["scrub"]["disabled"] is True
