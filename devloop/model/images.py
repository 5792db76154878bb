"""Image references: Docker's grammar and normalisation, and Tilt's matching rule.

One parser for the whole project: the Tiltfile validates refs with it, the YAML scan uses
it to decide which images a build replaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The grammar of github.com/distribution/reference, which Tilt uses to parse refs.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REF = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_PART}(?:/{_PATH_PART})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$")
DEFAULT_DOMAIN = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    """A parsed, normalized image reference (docker.io/library/ added like Docker does)."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def selects(self, other: ImageRef) -> bool:
        """Tilt's ref selector: a ref without tag selects every tag of the same name."""
        if self.name != other.name:
            return False
        return not self.tag or self.tag == other.tag


def parse_image_ref(text: str) -> ImageRef:
    """Parse like Docker's ParseNormalizedNamed; ValueError says what is wrong."""
    match = _REF.match(text)
    if not match or len(text) > 255:
        if text and _REF.match(text.lower()):
            raise ValueError("invalid reference format: repository name must be lowercase")
        raise ValueError("invalid reference format")
    domain, path = match.group("domain"), match.group("path")
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain and not _is_domain(domain):
        domain, path = None, f"{domain}/{path}"
        if not _REF.match(path):
            raise ValueError("invalid reference format: repository name must be lowercase")
    if not domain:
        domain = DEFAULT_DOMAIN
        if "/" not in path:
            path = f"library/{path}"
    return ImageRef(domain, path, match.group("tag") or "", match.group("digest") or "")


def _is_domain(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost" or first.lower() != first


def refs_match(selector: str, candidate: str) -> bool:
    """Whether a declared image `selector` (docker_build ref) matches a ref used elsewhere."""
    try:
        return parse_image_ref(selector).selects(parse_image_ref(candidate))
    except ValueError:
        return False


def parse_or_none(text: str) -> ImageRef | None:
    """The reference, or None when `text` is not one (e.g. a template placeholder)."""
    try:
        return parse_image_ref(text.strip())
    except ValueError:
        return None


def is_registry_host(host: str) -> bool:
    """Whether `host` (with an optional path) can prefix image names, as a registry."""
    match = _REF.match(f"{host}/x")
    return match is not None and not match.group("tag") and not match.group("digest")
