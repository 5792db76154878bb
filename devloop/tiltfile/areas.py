"""The builtin areas a Tiltfile sees, in the order they contribute to the Plan.

Order matters for `contribute`: settings and data first, then images (docker, custom
builds), then local and compose resources, and Kubernetes last because it matches the
declared images against the YAML.
"""

from __future__ import annotations

from devloop.tiltfile.compose_area import ComposeArea
from devloop.tiltfile.config_area import ConfigArea
from devloop.tiltfile.context import Area, EvalContext
from devloop.tiltfile.docker_area import DockerArea
from devloop.tiltfile.files_area import FilesArea
from devloop.tiltfile.helm_area import HelmArea
from devloop.tiltfile.k8s_area import K8sArea
from devloop.tiltfile.local_area import LocalArea
from devloop.tiltfile.messages_area import MessagesArea
from devloop.tiltfile.os_area import OsArea
from devloop.tiltfile.settings_area import SettingsArea
from devloop.tiltfile.v1alpha1_area import V1Alpha1Area


def default_areas(ctx: EvalContext) -> list[Area]:
    areas: list[Area] = [
        # settings, data, os, config
        SettingsArea(ctx),
        MessagesArea(ctx),
        FilesArea(ctx),
        OsArea(ctx),
        ConfigArea(ctx),
        V1Alpha1Area(ctx),
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
