"""Typed Kubernetes errors: temporary ones are retried with backoff, permanent ones reported."""

from __future__ import annotations

import json


class KubeError(Exception):
    """A Kubernetes API failure.

    `temporary` is True when trying again later may succeed: the API server could not be
    reached, answered 5xx, throttled us (429) or reported a conflict (409). Everything else
    (validation, forbidden, not found) is permanent and needs a change by the user. `status`
    is the HTTP status (None when there was no response), `reason` the API's reason
    (e.g. "Invalid", "NotFound")."""

    def __init__(self, message: str, *, temporary: bool = False, status: int | None = None,
                 reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.temporary = temporary
        self.status = status
        self.reason = reason


def is_temporary_status(status: int) -> bool:
    return status == 0 or status in (409, 429) or status >= 500


def status_reason(body: str) -> tuple[str, str]:
    """(reason, message) of the API server's Status body; a body that is not one is the
    message itself."""
    message = body.strip()
    try:
        data = json.loads(body)
    except ValueError:
        return "", message
    if not isinstance(data, dict):
        return "", message
    return str(data.get("reason") or ""), str(data.get("message") or message)


def error_from_status(status: int, body: str, what: str = "") -> KubeError:
    """A KubeError from an HTTP status and the API server's Status body, naming `what`
    (e.g. "Deployment default/web") and the server's own explanation."""
    reason, message = status_reason(body)
    if status == 0:
        text = f"cannot reach the API server: {message}"
        return KubeError(f"{what}: {text}" if what else text, temporary=True, status=None)
    prefix = f"{what}: " if what else ""
    label = f"{reason} ({status})" if reason else f"HTTP {status}"
    return KubeError(f"{prefix}{label}: {message}", temporary=is_temporary_status(status),
                     status=status, reason=reason)


class UnknownKindError(KubeError):
    """The API server does not serve this apiVersion/kind (e.g. its CRD is not installed)."""
