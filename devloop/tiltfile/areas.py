"""The builtin areas a Tiltfile sees, in the order they contribute to the Plan.

Order matters for `contribute`: settings and data first, then images (docker, custom
builds), then local and compose resources, and Kubernetes last because it matches the
declared images against the YAML.
"""

from __future__ import annotations

from devloop.tiltfile.compose_area import ComposeArea
from devloop.tiltfile.context import Area, EvalContext
from devloop.tiltfile.docker_area import DockerArea
from devloop.tiltfile.helm_area import HelmArea
from devloop.tiltfile.k8s_area import K8sArea
from devloop.tiltfile.local_area import LocalArea


def default_areas(ctx: EvalContext) -> list[Area]:
    areas: list[Area] = [
        # settings, data, os, config
        # images
        DockerArea(ctx),
        # local and compose
        LocalArea(ctx),
        ComposeArea(ctx),
        # kubernetes
        K8sArea(ctx),
        HelmArea(ctx),
    ]
    return areas
