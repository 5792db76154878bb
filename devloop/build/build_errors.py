"""Build errors that name what the user wrote: the Dockerfile line and what to do.

Two failures are common enough to deserve their own message instead of the engine's:
a base image that is neither in the engine nor pullable (the engine only says
`Get "https://registry-1.docker.io/v2/": ... no such host`), and a Dockerfile that needs
BuildKit while only the legacy builder is available.
"""

from __future__ import annotations

import os
import re

from devloop.model import dockerfile, plan

BUILDX_HELP = ("install the docker buildx CLI plugin (Docker Desktop and Docker's own "
               "packages include it; see https://docs.docker.com/go/buildx/)")

_STEP_FROM = re.compile(r"^Step \d+/\d+ : FROM\s+(?:--\S+\s+)*(\S+)", re.IGNORECASE)
_METADATA = re.compile(r"load metadata for (\S+)")
_VERTEX_FROM = re.compile(r"^\[[^\]]*\] FROM (\S+)")
_MANIFEST_URL = re.compile(r"https?://([^/\s\"]+)/v2/(\S+?)/manifests/([^\s\"/]+)")


def dockerfile_label(target: plan.DockerBuild) -> str:
    """How the user refers to the Dockerfile: its path (relative when under the cwd)."""
    if target.dockerfile_contents is not None:
        return f"the dockerfile_contents of docker_build({target.ref!r})"
    path = os.path.abspath(os.path.join(target.context, target.dockerfile))
    rel = os.path.relpath(path)
    return path if rel.startswith(os.pardir) else rel


def dockerfile_text(target: plan.DockerBuild) -> str:
    """The Dockerfile's text, or "" when it cannot be read (the build reports that)."""
    if target.dockerfile_contents is not None:
        return target.dockerfile_contents
    try:
        with open(os.path.join(target.context, target.dockerfile), encoding="utf-8",
                  errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def needs_buildkit_message(target: plan.DockerBuild, why: str) -> str | None:
    """The error for the legacy builder when the build needs BuildKit, else None."""
    reasons: list[str] = []
    if target.secret:
        reasons.append("docker_build(secret=...) passes secrets")
    if target.ssh:
        reasons.append("docker_build(ssh=...) forwards SSH agents")
    for feature in dockerfile.buildkit_features(dockerfile_text(target)):
        reasons.append(f"{dockerfile_label(target)}:{feature.line}: `{feature.text}` uses "
                       f"{feature.what}")
        break
    if not reasons:
        return None
    return (f"docker_build {target.ref!r}: {reasons[0]}, which needs BuildKit, and {why}: "
            f"{BUILDX_HELP}")


def image_from_failure(step_name: str, error: str) -> str | None:
    """The base image a failed step was resolving or pulling, if it was one."""
    for pattern in (_METADATA, _VERTEX_FROM, _STEP_FROM):
        match = pattern.search(step_name)
        if match:
            return match.group(1)
    match = _MANIFEST_URL.search(error)
    if match:
        host, name, tag = match.groups()
        host = "docker.io" if host in ("registry-1.docker.io", "index.docker.io") else host
        return f"{host}/{name}:{tag}"
    return None


def missing_base_image_message(target: plan.DockerBuild, image: str, reason: str) -> str:
    """Name the image, the FROM line that uses it, and what the user can do."""
    wanted = normalize_image(image)
    where = ""
    shown = image
    for use in dockerfile.image_uses(dockerfile_text(target), dict(target.build_args)):
        if use.keyword == "FROM" and normalize_image(use.ref) == wanted:
            where = f" ({dockerfile_label(target)}:{use.line}: `{use.text}`)"
            shown = use.ref
            break
    return (f"docker_build {target.ref!r}: base image {shown}{where} is not in the Docker "
            f"engine and could not be pulled: {reason.strip()}\n"
            f"Fix the name or tag, load the image into the engine (`docker pull {shown}` "
            f"where its registry is reachable, or `docker load`), or build it in the Tiltfile "
            f"with docker_build({_familiar(shown)!r}, ...) so that devloop builds it first.")


def _familiar(image: str) -> str:
    name = normalize_image(image)
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


def normalize_image(name: str) -> str:
    """`foo` -> `docker.io/library/foo:latest`, as the engine names images in its errors."""
    ref, _, digest = name.partition("@")
    slash, colon = ref.rfind("/"), ref.rfind(":")
    if colon <= slash and not digest:
        ref += ":latest"
    first, _, rest = ref.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        ref = "docker.io/" + (ref if rest else "library/" + ref)
    return ref + ("@" + digest if digest else "")
