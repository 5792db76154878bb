"""The builtin areas a Tiltfile sees, in the order they contribute to the Plan.

Order matters for `contribute`: settings and data first, then images (docker, custom
builds), then local and compose resources, and Kubernetes last because it matches the
declared images against the YAML.
"""

from __future__ import annotations

from devloop.tiltfile.context import Area, EvalContext


def default_areas(ctx: EvalContext) -> list[Area]:
    areas: list[Area] = [
        # settings, data, os, config
        # images
        # local and compose
        # kubernetes
    ]
    return areas
