"""Which values a snapshot must not show: those of the Kubernetes Secrets the session applies."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

# A shorter value would match all over the logs (a password "1" would blank every digit);
# such values are left as they are, and the README says so.
MIN_SECRET_CHARS = 4


@dataclass(frozen=True)
class SecretValue:
    """One key of one Secret: where it comes from, and its value."""

    namespace: str
    name: str
    key: str
    value: str

    @property
    def label(self) -> str:
        return f"[redacted secret {self.namespace or 'default'}/{self.name}:{self.key}]"


def _decoded(data: str) -> str | None:
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def secrets_in_manifest(manifest: Mapping[str, Any]) -> list[SecretValue]:
    """The values of a v1 Secret (`data`, base64, and `stringData`); nothing for other kinds."""
    if manifest.get("kind") != "Secret" or not str(manifest.get("apiVersion", "v1")).endswith(
            "v1"):
        return []
    meta = manifest.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    found = []
    for key, data in (manifest.get("data") or {}).items():
        value = _decoded(str(data)) if data is not None else None
        if value is not None:
            found.append(SecretValue(namespace, name, str(key), value))
    for key, value in (manifest.get("stringData") or {}).items():
        if value is not None:
            found.append(SecretValue(namespace, name, str(key), str(value)))
    return found


def secrets_in_yaml(text: str) -> list[SecretValue]:
    """Secrets in a multi-document YAML text (a resource's applied YAML)."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return []
    return [value for doc in documents if isinstance(doc, dict)
            for value in secrets_in_manifest(doc)]


class Scrubber:
    """Replaces every secret value, its base64 form and each long enough line of a multi-line
    value (logs are kept line by line) with a label naming the Secret and key."""

    def __init__(self, secrets: Iterable[SecretValue]) -> None:
        forms: dict[str, str] = {}
        for secret in secrets:
            if len(secret.value.strip()) < MIN_SECRET_CHARS:
                continue  # shown anyway; hiding its base64 form would only mislead
            candidates = [secret.value, base64.b64encode(secret.value.encode()).decode()]
            candidates += [line for line in secret.value.splitlines() if line.strip()]
            for form in candidates:
                if len(form.strip()) >= MIN_SECRET_CHARS:
                    forms.setdefault(form, secret.label)
        self.forms = forms
        # Longest first, so a value is not half replaced by one of its own lines.
        self._pattern = re.compile("|".join(
            re.escape(form) for form in sorted(forms, key=len, reverse=True))) if forms else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: self.forms[match.group(0)], text)

    def data(self, value: Any) -> Any:
        """`value` (JSON-like data) with every string scrubbed, keys included."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
