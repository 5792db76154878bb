"""Where `load()` / `include()` paths point: files relative to the running file, and `ext://`.

Extensions resolve as in Tilt (internal/tiltfile/tiltextension): `ext://name` names an
Extension object, declared by `v1alpha1.extension(name, repo_name, repo_path)` or implied
(`repo_path` = name, in the repository called "default"); `ext://host/path` with no such
Extension uses the ExtensionRepo whose `load_host` is `host`. A repository is declared by
`v1alpha1.extension_repo(name, url, ref, git_subpath)`; the "default" one, unless the
Tiltfile declares it, is DEVLOOP_EXTENSIONS_REPO (Tilt's public repository by default).
The extension's file is `<repository>/<git_subpath>/<repo_path>/Tiltfile`.

Layout: a `file://` URL or a local directory that is not a git repository is used in
place. A git repository (a URL, or a local clone or bare repository) is cloned
once under a `tilt_modules/` directory, at `tilt_modules/<host>/<path>` like Tilt's
(`~/.local/share/devloop/tilt_modules/github.com/tilt-dev/tilt-extensions`), because
extensions such as `helm_remote` walk up from their own file until they find a directory
holding `tilt_modules` and keep their caches there. A local override directory
(DEVLOOP_EXTENSIONS_DIR), checked first for default-repository extensions, lets a
project pin or patch an extension without any repository. Next come devloop's built-in
extensions (devloop/extensions: restart_process, done natively), then the repository.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devloop.tiltfile.errors import BuiltinError

DEFAULT_EXTENSION_REPO = "https://github.com/tilt-dev/tilt-extensions"
DEFAULT_REPO_NAME = "default"
EXTENSION_PREFIX = "ext://"
BUILTIN_EXTENSIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                      "extensions")
TILT_MODULES = "tilt_modules"


def _data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return os.path.join(base, "devloop")


@dataclass(frozen=True)
class ExtensionSettings:
    repo: str = DEFAULT_EXTENSION_REPO
    override_dir: str = ""
    # Holds `tilt_modules/`; empty means the user's data directory.
    data_dir: str = field(default="")

    @staticmethod
    def from_environ(repo: str = "", override_dir: str = "") -> ExtensionSettings:
        return ExtensionSettings(
            repo=repo or os.environ.get("DEVLOOP_EXTENSIONS_REPO") or DEFAULT_EXTENSION_REPO,
            override_dir=override_dir or os.environ.get("DEVLOOP_EXTENSIONS_DIR", ""),
            data_dir=_data_dir(),
        )

    @property
    def modules_dir(self) -> str:
        return os.path.join(self.data_dir or _data_dir(), TILT_MODULES)


def resolve(path: str, running_file: str, settings: ExtensionSettings, what: str,
            declared: Mapping[tuple[str, str], Mapping[str, Any]] | None = None) -> str:
    """The absolute file a load/include path names. `declared[(kind, name)]` holds the
    spec of each ExtensionRepo and Extension object the Tiltfile has declared so far.
    Raises BuiltinError."""
    if path.startswith(EXTENSION_PREFIX):
        return _resolve_extension(path[len(EXTENSION_PREFIX):], settings, what, declared or {})
    if path.startswith("//"):
        raise BuiltinError(f"{what}: repository-relative path {path!r} is not supported")
    base = os.path.dirname(os.path.abspath(running_file))
    resolved = os.path.normpath(os.path.join(base, os.path.expanduser(path)))
    if os.path.isdir(resolved):
        resolved = os.path.join(resolved, "Tiltfile")
    return resolved


def _sanitize(name: str) -> str:
    # Tilt names the implied Extension object after the module with unusual characters
    # replaced (apis.SanitizeName); declared names are matched the same way.
    return re.sub(r"[^a-zA-Z0-9.\-_]", "_", name)


def _resolve_extension(module: str, settings: ExtensionSettings, what: str,
                       declared: Mapping[tuple[str, str], Mapping[str, Any]]) -> str:
    module = module.strip("/")
    if not module or ".." in module.split("/"):
        raise BuiltinError(f"{what}: invalid extension name {module!r}")
    extension = declared.get(("Extension", module)) or declared.get(
        ("Extension", _sanitize(module)))
    repo_name, repo_path = DEFAULT_REPO_NAME, module
    if extension is not None:
        repo_name = str(extension.get("repoName") or DEFAULT_REPO_NAME)
        repo_path = str(extension.get("repoPath") or "")
    elif "/" in module:
        host, _, rest = module.partition("/")
        for (kind, name), spec in declared.items():
            if kind == "ExtensionRepo" and spec.get("loadHost") == host:
                repo_name, repo_path = name, rest
                break
    repo = declared.get(("ExtensionRepo", repo_name))
    if repo is None and repo_name != DEFAULT_REPO_NAME:
        raise BuiltinError(f"{what}: extension {module!r} names extension repo "
                           f"{repo_name!r}, which is not declared (v1alpha1.extension_repo)")
    if repo is None and settings.override_dir:
        candidate = os.path.join(settings.override_dir, repo_path, "Tiltfile")
        if os.path.isfile(candidate):
            return candidate
    if repo is None:
        # devloop's own versions of some default-repository extensions (restart_process
        # without its helper image): they work offline, with no checkout.
        candidate = os.path.join(BUILTIN_EXTENSIONS_DIR, repo_path, "Tiltfile")
        if os.path.isfile(candidate):
            return candidate
    url = str(repo.get("url", "")) if repo is not None else settings.repo
    root = _repository_root(url, str(repo.get("ref", "")) if repo else "", settings, what)
    subpath = str(repo.get("gitSubpath", "")) if repo is not None else ""
    candidate = os.path.normpath(os.path.join(root, subpath, repo_path, "Tiltfile"))
    if not candidate.startswith(os.path.normpath(root) + os.sep):
        raise BuiltinError(f"{what}: invalid extension repo path {repo_path!r}")
    if not os.path.isfile(candidate):
        raise BuiltinError(
            f"{what}: extension {module!r} not found in extension repository {url} "
            f"(looked for {os.path.join(subpath, repo_path, 'Tiltfile')})")
    return candidate


def import_path(url: str) -> str:
    """Where under tilt_modules a repository goes: its host and path, like Go's import
    paths (`github.com/tilt-dev/tilt-extensions`); a local git repository keeps its path."""
    text = re.sub(r"^[a-z+]+://", "", url)
    text = re.sub(r"^[^@/]+@([^:/]+):", r"\1/", text)  # git@host:path
    text = text.removesuffix("/").removesuffix(".git")
    parts = [part for part in text.split("/") if part not in ("", ".", "..")]
    return os.path.join(*parts) if parts else "repo"


def _repository_root(url: str, ref: str, settings: ExtensionSettings, what: str) -> str:
    if url.startswith("file://"):
        local = url[len("file://"):]
        if ref:
            raise BuiltinError(f"{what}: extension repo {url}: ref is not supported on file:// "
                               "repositories")
        if not os.path.isdir(local):
            raise BuiltinError(f"{what}: extension repository {url} is not a directory")
        return local
    if os.path.isdir(url) and not os.path.exists(os.path.join(url, "HEAD")) \
            and not os.path.exists(os.path.join(url, ".git")):
        return url  # a plain directory, not a git repository: used in place
    return checkout_repository(url, ref, settings, what)


def checkout_repository(url: str, ref: str, settings: ExtensionSettings, what: str) -> str:
    """The clone of git repository `url` under tilt_modules, made on first use."""
    checkout = os.path.join(settings.modules_dir, import_path(url))
    if os.path.isdir(os.path.join(checkout, ".git")):
        return checkout
    os.makedirs(os.path.dirname(checkout), exist_ok=True)
    command = ["git", "clone", "--quiet", url, checkout]
    if not ref:
        command[2:2] = ["--depth", "1"]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
        if ref:
            subprocess.run(["git", "-C", checkout, "checkout", "--quiet", ref], check=True,
                           capture_output=True, text=True, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise BuiltinError(
            f"{what}: cannot fetch extension repository {url}: {detail.strip()} "
            "(offline? set DEVLOOP_EXTENSIONS_REPO to a local checkout or file:// URL, or "
            "DEVLOOP_EXTENSIONS_DIR to a directory of extensions)") from None
    return checkout
