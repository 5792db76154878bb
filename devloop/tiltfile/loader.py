"""Where `load()` paths point: files relative to the loading file, and `ext://` extensions.

Extensions come from an extension repository laid out like Tilt's: `<repo>/<name>/Tiltfile`.
The repository is a local directory, a `file://` URL or a git URL (cloned once into a
cache, then used as is). A local override directory, checked first, lets a project pin or
patch an extension without a repository at all.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass

from devloop.tiltfile.errors import Location, TiltfileError

DEFAULT_EXTENSION_REPO = "https://github.com/tilt-dev/tilt-extensions"
EXTENSION_PREFIX = "ext://"


@dataclass(frozen=True)
class ExtensionSettings:
    repo: str = DEFAULT_EXTENSION_REPO
    override_dir: str = ""
    cache_dir: str = os.path.join(os.path.expanduser("~"), ".cache", "devloop", "extensions")

    @staticmethod
    def from_environ(repo: str = "", override_dir: str = "") -> ExtensionSettings:
        return ExtensionSettings(
            repo=repo or os.environ.get("DEVLOOP_EXTENSIONS_REPO") or DEFAULT_EXTENSION_REPO,
            override_dir=override_dir or os.environ.get("DEVLOOP_EXTENSIONS_DIR", ""),
        )


def resolve(path: str, loading_file: str, settings: ExtensionSettings,
            location: Location) -> str:
    """The absolute file a load/include path names."""
    if path.startswith(EXTENSION_PREFIX):
        return _resolve_extension(path[len(EXTENSION_PREFIX):], settings, location)
    if path.startswith("//"):
        raise TiltfileError(f"load: repository-relative path {path!r} is not supported", location)
    base = os.path.dirname(os.path.abspath(loading_file))
    resolved = os.path.normpath(os.path.join(base, os.path.expanduser(path)))
    if os.path.isdir(resolved):
        resolved = os.path.join(resolved, "Tiltfile")
    return resolved


def _resolve_extension(name: str, settings: ExtensionSettings, location: Location) -> str:
    name = name.strip("/")
    if not name or ".." in name.split("/"):
        raise TiltfileError(f"load: invalid extension name {name!r}", location)
    if settings.override_dir:
        candidate = os.path.join(settings.override_dir, name, "Tiltfile")
        if os.path.isfile(candidate):
            return candidate
    root = _repository_root(settings, location)
    candidate = os.path.join(root, name, "Tiltfile")
    if not os.path.isfile(candidate):
        raise TiltfileError(
            f"load: extension {name!r} not found in extension repository {settings.repo} "
            f"(looked for {name}/Tiltfile)", location)
    return candidate


def _repository_root(settings: ExtensionSettings, location: Location) -> str:
    repo = settings.repo
    if repo.startswith("file://"):
        repo = repo[len("file://"):]
    if os.path.isdir(repo):
        return repo
    digest = hashlib.sha256(repo.encode()).hexdigest()[:16]
    checkout = os.path.join(settings.cache_dir, digest)
    if os.path.isdir(os.path.join(checkout, ".git")):
        return checkout
    os.makedirs(settings.cache_dir, exist_ok=True)
    try:
        subprocess.run(["git", "clone", "--depth", "1", "--quiet", repo, checkout],
                       check=True, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise TiltfileError(
            f"load: cannot fetch extension repository {settings.repo}: {detail.strip()} "
            "(offline? set DEVLOOP_EXTENSIONS_REPO to a local checkout or file:// URL, or "
            "DEVLOOP_EXTENSIONS_DIR to a directory of extensions)", location) from None
    return checkout
