"""The registry of object kinds: typed schemas, their JSON, the API's schemas generated from
them, `devloop get`'s columns, and alerts with stable ids and evidence."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import jsonschema_rs
import pytest

from devloop.client import table
from devloop.engine.alerts import ALERT_KIND, message_key
from devloop.engine.engine import Engine
from devloop.engine.logs import LogStore
from devloop.engine.runner import RuntimeReport
from devloop.engine.scheduler import RuntimeState
from devloop.engine.store import Store
from devloop.model import kinds as k
from devloop.model import plan as p
from devloop.server.app import KNOWN_KINDS
from devloop.server.openapi import describe


def test_a_schema_writes_camel_case_keys_and_reads_them_back():
    status = k.ResourceStatus(update_status="ok", pending_changes=("a.py",), builds=2)
    data = status.to_json()
    assert data["updateStatus"] == "ok" and data["pendingChanges"] == ["a.py"]
    assert k.ResourceStatus.from_json({**data, "unknownKey": 1}) == status
    assert k.ResourceStatus.from_json({}) == k.ResourceStatus()
    assert "trace" not in k.BuildStatus().to_json()  # optional until the trace is added


def test_the_api_knows_every_registered_kind():
    assert set(KNOWN_KINDS) == set(k.KINDS)
    assert {"resource", "build", "pod", "portforward", "alert", "session", "liveupdate",
            "container"} <= set(k.KINDS)


def _validator() -> Any:
    """The OpenAPI `Object` schema as JSON Schema (nullable -> a null type too)."""
    document = copy.deepcopy(describe())

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            node = {key: convert(value) for key, value in node.items()}
            if node.pop("nullable", False):
                node = {"anyOf": [node, {"type": "null"}]}
            return node
        if isinstance(node, list):
            return [convert(item) for item in node]
        return node

    schemas = convert(document["components"]["schemas"])
    return jsonschema_rs.validator_for({"$ref": "#/components/schemas/Object",
                                        "components": {"schemas": schemas}})


def _object(kind: str, spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": "x", "resourceVersion": "1", "updatedAt": 1.0},
            "spec": spec, "status": status}


@pytest.mark.parametrize("kind", list(k.KINDS))
def test_the_generated_openapi_schema_accepts_each_kind_s_objects(kind):
    validator = _validator()
    schema = k.KINDS[kind]
    assert validator.is_valid(_object(kind, schema.spec().to_json(), schema.status().to_json()))


def test_the_generated_openapi_schema_refuses_a_field_of_the_wrong_type():
    validator = _validator()
    assert not validator.is_valid(_object("pod", {"resource": "web"}, {"ready": "yes"}))
    assert not validator.is_valid(_object("resource", {"labels": "a,b"}, {}))
    # A kind the registry does not know carries any spec and status.
    assert validator.is_valid(_object("widget", {"ready": "yes"}, {"anything": [1]}))


def test_devloop_get_shows_each_kind_s_registered_columns():
    container = {"metadata": {"name": "shop-web-1", "updatedAt": 0.0},
                 "spec": k.ContainerSpec(resource="web", service="web").to_json(),
                 "status": k.ContainerStatus(status="running", restarts=1,
                                             ports=("127.0.0.1:8080->80/tcp",)).to_json()}
    header, row = table("container", [container]).splitlines()
    assert header.split() == ["NAME", *(c.header for c in k.CONTAINER.columns)]
    assert row.split()[:6] == ["shop-web-1", "web", "web", "running", "-", "1"]
    resource = {"metadata": {"name": "api", "updatedAt": 0.0},
                "spec": k.ResourceSpec(type="k8s").to_json(),
                "status": k.ResourceStatus(update_status="ok", enabled=False,
                                           waiting="waiting for db").to_json()}
    narrow, wide = table("resource", [resource]), table("resource", [resource], wide=True)
    assert "disabled" in narrow and "REASON" not in narrow
    assert "waiting for db" in wide  # REASON: the error, else why it waits


class Reporting:
    """A runner whose runtime report the test sets."""

    def __init__(self, resource: p.Resource) -> None:
        self.name = resource.name
        self.report = RuntimeReport(RuntimeState.PENDING)

    async def update(self, changed_files: tuple[str, ...]) -> None:
        return None

    def runtime(self) -> RuntimeReport:
        return self.report

    async def stop(self) -> None:
        return None


def test_runtime_alerts_keep_their_ids_time_and_evidence_while_others_come_and_go():
    async def run() -> None:
        store, logs = Store(), LogStore()
        resource = p.Resource(name="web", type=p.ResourceType.LOCAL)
        runners: list[Reporting] = []

        def factory(resource: p.Resource, plan: p.Plan) -> Reporting:
            runners.append(Reporting(resource))
            return runners[-1]

        engine = Engine(p.Plan(tiltfile="/p/Tiltfile", resources=(resource,)), store=store,
                        logs=logs, runner_factory=factory)  # type: ignore[arg-type]
        logs.append("web", "container main exited with code 1", source="runtime")
        first, second = "pod web-1: CrashLoopBackOff", "pod web-2: ImagePullBackOff"
        runners[0].report = RuntimeReport(
            RuntimeState.ERROR, first, alerts=[first, second], events={second: {
                "reason": "Failed", "message": "pull failed"}})
        engine._publish("web")
        names = {obj.name: obj for obj in store.list(ALERT_KIND)}
        second_id = f"web-runtime-{message_key(second)}"
        assert set(names) == {f"web-runtime-{message_key(first)}", second_id}
        raised = names[second_id]
        assert raised.spec == {"resource": "web", "type": "runtime",
                               "key": message_key(second)}
        assert raised.status["evidence"]["log"] == ["container main exited with code 1"]
        assert raised.status["evidence"]["event"]["reason"] == "Failed"
        logs.append("web", "later line", source="runtime")
        runners[0].report = RuntimeReport(RuntimeState.ERROR, second, alerts=[second])
        engine._publish("web")
        again = store.get(ALERT_KIND, second_id)
        assert [obj.name for obj in store.list(ALERT_KIND)] == [second_id]
        assert again is not None and again.version == raised.version  # not rewritten
        await engine.close()

    asyncio.run(run())
