"""The API's OpenAPI 3.0 description, served at `/api/v1/openapi.json`.

The routes are written by hand next to the routes they describe (app, logs_api, actions,
watch); the objects' schemas are generated from the kinds' typed schemas
(devloop.model.kinds), so an object of a known kind must match its kind's spec and status.
Checked against the running server by the schemathesis test (tests/unit/test_api_fuzz.py):
a route or answer that changes without this file fails there.
"""

from __future__ import annotations

from typing import Any

from devloop.model.kinds import KINDS, Kind, json_schema
from devloop.server.logs_api import MAX_LIMIT, SOURCES
from devloop.server.security import TOKEN_HEADER
from devloop.server.watch import VERSION_DIGITS

# Any name is a kind (an unknown one has no objects); the fixed paths under /api/v1 (watch,
# logs, openapi.json, actions/...) take precedence, as OpenAPI's concrete paths do.
KIND_PATTERN = r"^[^/]+$"
VERSION_PATTERN = f"^({VERSION_DIGITS})?$"  # empty: not given
SOURCE_WORDS = "|".join(sorted(SOURCES))


# A string that can be passed to a process: no NUL. (Nor a lone surrogate, refused too, which
# a pattern cannot say portably: JSON text is valid Unicode unless escapes make it otherwise.)
TEXT = {"type": "string", "pattern": "^[^\\x00]*$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


EVENT_STREAM = {"description": "server-sent events, until either side ends the stream; a "
                               "client that falls behind gets `event: error` and is closed",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}}
REFUSED = {"403": _error("the Origin is not this daemon's"),
           "421": _error("the Host is not this daemon's address")}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _version_param(name: str, description: str) -> dict[str, Any]:
    return _query(name, {"type": "string", "pattern": VERSION_PATTERN}, description)


WATCH_PARAMS = [
    _query("watch", {"type": "string", "enum": ["1", "true"]},
           "stream changes as server-sent events instead of answering a list"),
    _version_param("resourceVersion", "with watch: replay only what changed after it"),
]
LOG_PARAMS = [
    _query("resource", {"type": "string"}, "only this resource's lines"),
    _query("q", {"type": "string"}, "case-insensitive substring of the text"),
    _query("source", {"type": "string", "pattern": f"^({SOURCE_WORDS})?(,({SOURCE_WORDS})?)*$"},
           "one or several sources, comma-separated (none: every source)"),
    _version_param("since", "only lines with a greater seq"),
    _version_param("before", "only lines with a smaller seq: the way to page back"),
    _query("limit", {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT},
           "the newest N matching lines (default 1000)"),
    _query("follow", {"type": "string", "enum": ["1", "true"]},
           "stream the newest lines, then new ones, as server-sent events"),
]
ACTION_RESOURCES = {"oneOf": [
    {"type": "object", "required": ["resource"], "not": {"required": ["resources"]},
     "properties": {"resource": {"type": "string", "minLength": 1}}},
    {"type": "object", "required": ["resources"],
     "properties": {"resources": {"type": "array", "minItems": 1,
                                  "items": {"type": "string", "minLength": 1}}}}]}
ACTION_ANSWERS = {
    "200": _json({"type": "object", "required": ["action", "resources"], "properties": {
        "action": {"type": "string"}, "resources": {"type": "array",
                                                    "items": {"type": "string"}}}},
        "done"),
    "400": _error("the body is not a JSON object naming resources"),
    "403": _error("the token is missing or wrong, or the Origin is foreign"),
    "404": _error("no such resource"),
    "409": _error("the action cannot run in this daemon"),
    "421": REFUSED["421"],
}


def _action(summary: str) -> dict[str, Any]:
    return {"post": {"summary": summary, "security": [{"token": []}],
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": ACTION_RESOURCES}}},
                     "responses": ACTION_ANSWERS}}


def describe() -> dict[str, Any]:
    """The OpenAPI document."""
    kind = {"name": "kind", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": KIND_PATTERN},
            "description": ", ".join(KINDS) + " (a plural names the same kind; `all` "
                           "lists every kind; any other name has no objects)"}
    name = {"name": "name", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": r"^[^/]+$"}}
    last_event_id = {"name": "Last-Event-ID", "in": "header", "required": False,
                     "schema": {"type": "string", "pattern": VERSION_PATTERN},
                     "description": "what an EventSource sends on reconnecting: as since"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "devloop daemon API", "version": "1"},
        "paths": {
            "/api/v1": {"get": {"summary": "the kinds in the store with their counts",
                                "responses": {"200": _json(_ref("Index"), "the kinds"),
                                              **REFUSED}}},
            "/api/v1/openapi.json": {"get": {"summary": "this document", "responses": {
                "200": _json({"type": "object"}, "the OpenAPI description"), **REFUSED}}},
            "/api/v1/kinds": {"get": {
                "summary": "every kind the daemon publishes, its fields and table columns",
                "responses": {"200": _json(_ref("KindList"), "the kinds"), **REFUSED}}},
            "/api/v1/watch": {"get": {
                "summary": "changes of every kind as server-sent events",
                "parameters": [WATCH_PARAMS[1], last_event_id],
                "responses": {"200": EVENT_STREAM, "400": _error("a bad version"),
                              **REFUSED}}},
            "/api/v1/logs": {"get": {
                "summary": "a page of kept log lines, newest last, or a follow stream",
                "parameters": [*LOG_PARAMS, last_event_id],
                "responses": {"200": {
                    "description": "a page of lines, or with follow a stream of them",
                    "content": {"application/json": {"schema": _ref("LogPage")},
                                "text/event-stream": {"schema": {"type": "string"}}}},
                    "400": _error("a bad parameter"), **REFUSED}}},
            "/api/v1/{kind}": {"get": {
                "summary": "the objects of a kind, or a stream of their changes",
                "parameters": [kind, *WATCH_PARAMS, last_event_id],
                "responses": {"200": {
                    "description": "the list, or with watch a stream of changes",
                    "content": {"application/json": {"schema": _ref("List")},
                                "text/event-stream": {"schema": {"type": "string"}}}},
                    "400": _error("a bad version"), **REFUSED}}},
            "/api/v1/{kind}/{name}": {"get": {
                "summary": "one object", "parameters": [kind, name],
                "responses": {"200": _json(_ref("Object"), "the object"),
                              "404": _error("no such object"), **REFUSED}}},
            "/api/v1/actions/trigger": _action("update resources now"),
            "/api/v1/actions/enable": _action("enable resources"),
            "/api/v1/actions/disable": _action("disable resources"),
            "/api/v1/actions/args": {"post": {
                "summary": "change the Tiltfile args and reload it",
                "security": [{"token": []}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["args"], "properties": {
                        "args": {"type": "array", "items": TEXT}}}}}},
                "responses": {
                    "200": _json({"type": "object", "required": ["action", "args"],
                                  "properties": {"action": {"type": "string"},
                                                 "args": {"type": "array",
                                                          "items": {"type": "string"}}}},
                                 "the args the next evaluation uses"),
                    "400": _error("not a list of strings of valid text"),
                    "403": ACTION_ANSWERS["403"],
                    "409": _error("args cannot change in this daemon (devloop ci)"),
                    "421": REFUSED["421"]}}},
        },
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header",
                                          "name": TOKEN_HEADER}},
            "schemas": _schemas(),
        },
    }


def _schemas() -> dict[str, Any]:
    string, integer = {"type": "string"}, {"type": "integer"}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": string}},
        "Index": {"type": "object", "required": ["resourceVersion", "kinds", "openStreams"],
                  "properties": {
                      "resourceVersion": string, "openStreams": integer,
                      "kinds": {"type": "array", "items": {
                          "type": "object", "required": ["kind", "count"],
                          "properties": {"kind": string, "count": integer}}}}},
        # An object of a known kind matches that kind's schema; any other has objects.
        "Object": {"anyOf": [*(_ref(_object_name(kind)) for kind in KINDS.values()),
                             _ref("OtherObject")]},
        "OtherObject": _object({"type": "string", "not": {"enum": list(KINDS)}},
                               {"type": "object"}, {"type": "object"}),
        **{name: schema for kind in KINDS.values() for name, schema in _kind_schemas(kind)},
        "KindList": {"type": "object", "required": ["kinds"], "properties": {
            "kinds": {"type": "array", "items": {
                "type": "object", "required": ["kind", "description", "owned", "columns",
                                               "spec", "status"],
                "properties": {
                    "kind": string, "description": string, "owned": {"type": "boolean"},
                    "spec": {"type": "array", "items": string},
                    "status": {"type": "array", "items": string},
                    "columns": {"type": "array", "items": {
                        "type": "object",
                        "required": ["header", "path", "format", "wide", "width",
                                     "fallbacks"],
                        "properties": {"header": string, "path": string, "format": string,
                                       "wide": {"type": "boolean"}, "width": integer,
                                       "fallbacks": {"type": "array",
                                                     "items": string}}}}}}}}},
        "List": {"type": "object", "required": ["kind", "resourceVersion", "items"],
                 "properties": {"kind": string, "resourceVersion": string,
                                "items": {"type": "array", "items": _ref("Object")}}},
        "LogLine": {"type": "object",
                    "required": ["seq", "time", "resource", "source", "prefix", "text"],
                    "properties": {"seq": integer, "time": {"type": "number"},
                                   "resource": string, "prefix": string, "text": string,
                                   "source": {"type": "string", "enum": sorted(SOURCES)}}},
        "LogPage": {"type": "object", "required": ["lines", "dropped", "last", "more"],
                    "properties": {
                        "lines": {"type": "array", "items": _ref("LogLine")},
                        "dropped": {"type": "object", "additionalProperties": integer},
                        "last": integer,
                        "more": {"type": "boolean",
                                 "description": "older lines match: page back with before"}}},
    }


def _object(kind: dict[str, Any], spec: dict[str, Any], status: dict[str, Any]
            ) -> dict[str, Any]:
    return {"type": "object", "required": ["kind", "metadata", "spec", "status"],
            "properties": {
                "kind": kind,
                "metadata": {"type": "object",
                             "required": ["name", "resourceVersion", "updatedAt"],
                             "properties": {"name": {"type": "string"},
                                            "resourceVersion": {"type": "string"},
                                            "updatedAt": {"type": "number"}}},
                "spec": spec, "status": status}}


def _object_name(kind: Kind) -> str:
    return kind.spec.__name__.removesuffix("Spec") + "Object"


def _kind_schemas(kind: Kind) -> list[tuple[str, dict[str, Any]]]:
    """The kind's object, spec and status schemas, from its dataclasses."""
    spec, status = kind.spec.__name__, kind.status.__name__
    object_schema = _object({"type": "string", "enum": [kind.name]}, _ref(spec), _ref(status))
    object_schema["description"] = kind.description
    return [(_object_name(kind), object_schema), (spec, json_schema(kind.spec)),
            (status, json_schema(kind.status))]
