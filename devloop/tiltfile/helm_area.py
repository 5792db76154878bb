"""YAML producers: helm(), kustomize() (run the tools) and filter_yaml() (split a stream).

helm and kustomize receive the Tiltfile's current os.environ, so a PATH or KUBECONFIG set
earlier in the Tiltfile is honoured. Every file of the chart or kustomization directory is
recorded as read, so editing any of them reloads the Tiltfile, as in Tilt.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from devloop.k8s.objects import YAMLError, parse_manifests, to_object, to_yaml
from devloop.model import plan as p
from devloop.tiltfile.context import (
    EvalContext,
    PlanDraft,
    blob,
    struct_kind,
    type_name,
    want_bool,
    want_str,
    want_str_dict,
    want_str_list,
)
from devloop.tiltfile.errors import BuiltinError
from devloop.tiltfile.k8s_area import yaml_objects
from devloop.tiltfile.k8s_args import ObjectSelector

# `helm template` renders chart tests too; Tilt drops them, they are not part of the app.
_HELM_TEST = re.compile(r"^# Source: .*/tests/", re.MULTILINE)


def _without_helm_tests(text: str) -> str:
    docs = re.split(r"^---[ \t]*$", text, flags=re.MULTILINE)
    return "\n---\n".join(d for d in docs if not _HELM_TEST.search(d))


class HelmArea:
    """helm, kustomize, filter_yaml."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx

    def builtins(self) -> Mapping[str, Any]:
        return {"filter_yaml": self.filter_yaml}

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        return {"helm": self.helm, "kustomize": self.kustomize}

    def contribute(self, draft: PlanDraft) -> None:
        pass

    # ------------------------------------------------------------------ helpers

    def _record_tree(self, path: str) -> None:
        if os.path.isfile(path):
            self.ctx.record_read(path)
            return
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                self.ctx.record_read(os.path.join(root, name))

    def _run(self, fn: str, argv: Sequence[str], environ: Mapping[str, str]) -> str:
        try:
            done = subprocess.run(list(argv), env=dict(environ), cwd=self.ctx.current_dir(),
                                  capture_output=True, text=True, check=False)
        except OSError as exc:
            raise BuiltinError(f"{fn}: cannot run {argv[0]}: {exc.strerror}") from None
        if done.returncode != 0:
            # One line: the evaluator reports the last line of a builtin's message.
            detail = " ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
            raise BuiltinError(f"{fn}: command '{shlex.join(argv)}' failed with exit code "
                               f"{done.returncode}: {detail}")
        return done.stdout

    # ------------------------------------------------------------------ builtins

    def helm(self, environ: dict[str, str], pathToChartDir: Any, name: Any = "",  # noqa: N803
             namespace: Any = "", values: Any = None, set: Any = None,  # noqa: A002
             kube_version: Any = "", skip_crds: Any = False) -> dict[str, Any]:
        """helm(pathToChartDir, name='', namespace='', values=[], set=[], kube_version='',
        skip_crds=False): render a local chart with `helm template` and return the YAML.

        `values` files are relative to the calling file; `set` is a list of 'key=value'.
        Objects without a namespace get `namespace` (helm template leaves them empty).
        CRDs are included unless skip_crds. Chart tests are dropped.
        """
        fn = "helm"
        chart = self.ctx.abspath(want_str(fn, "pathToChartDir", pathToChartDir))
        name_s = want_str(fn, "name", name or "", allow_blob=False)
        namespace_s = want_str(fn, "namespace", namespace or "", allow_blob=False)
        value_files = [self.ctx.abspath(v) for v in want_str_list(fn, "values", values)]
        sets = want_str_list(fn, "set", set)
        kube_version_s = want_str(fn, "kube_version", kube_version or "", allow_blob=False)
        skip = want_bool(fn, "skip_crds", skip_crds)
        if not os.path.exists(chart):
            raise BuiltinError(f"{fn}: chart not found: {chart}")
        self._record_tree(chart)
        for path in value_files:
            self.ctx.record_read(path)
            if not os.path.exists(path):
                raise BuiltinError(f"{fn}: values file not found: {path}")
        binary = shutil.which("helm", path=environ.get("PATH", ""))
        if binary is None:
            raise BuiltinError("helm: the helm binary is not installed (make sure `helm` is on "
                               "your $PATH: https://helm.sh/docs/intro/install/)")
        argv = ["helm", "template"] + ([name_s] if name_s else []) + [chart]
        if namespace_s:
            argv += ["--namespace", namespace_s]
        for path in value_files:
            argv += ["--values", path]
        for item in sets:
            argv += ["--set", item]
        if kube_version_s:
            argv += ["--kube-version", kube_version_s]
        if not skip:
            argv.append("--include-crds")
        argv[0] = binary
        text = _without_helm_tests(self._run(fn, argv, environ))
        if not namespace_s:
            return blob(text)
        try:
            manifests = parse_manifests(text, f"helm template {chart}")
        except YAMLError as exc:
            raise BuiltinError(f"{fn}: {exc}") from None
        for manifest in manifests:
            metadata = manifest.setdefault("metadata", {})
            if not metadata.get("namespace"):
                metadata["namespace"] = namespace_s
        return blob(to_yaml(to_object(m) for m in manifests))

    def kustomize(self, environ: dict[str, str], pathToDir: Any,  # noqa: N803
                  kustomize_bin: Any = None, flags: Any = None) -> dict[str, Any]:
        """kustomize(pathToDir, kustomize_bin=None, flags=[]): `kustomize build` the
        directory (or `kubectl kustomize` when kustomize is not installed) and return the
        YAML. `flags` are passed on to the command."""
        fn = "kustomize"
        directory = self.ctx.abspath(want_str(fn, "pathToDir", pathToDir))
        flag_list = want_str_list(fn, "flags", flags)
        if not os.path.isdir(directory):
            raise BuiltinError(f"{fn}: directory not found: {directory}")
        self._record_tree(directory)
        search = environ.get("PATH", "")
        if kustomize_bin is not None:
            binary = want_str(fn, "kustomize_bin", kustomize_bin, allow_blob=False)
            argv = [binary, "build", directory, *flag_list]
        elif shutil.which("kustomize", path=search):
            argv = [str(shutil.which("kustomize", path=search)), "build", directory, *flag_list]
        elif shutil.which("kubectl", path=search):
            argv = [str(shutil.which("kubectl", path=search)), "kustomize", directory,
                    *flag_list]
        else:
            raise BuiltinError("kustomize: neither kustomize nor kubectl is installed (make "
                               "sure one of them is on your $PATH)")
        return blob(self._run(fn, argv, environ))

    def filter_yaml(self, yaml: Any, labels: Any = None, name: Any = None,  # noqa: A002
                    namespace: Any = None, kind: Any = None,
                    api_version: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """filter_yaml(yaml, labels=None, name=None, namespace=None, kind=None,
        api_version=None) -> (matching, rest): split YAML (a filename, Blob or list) into
        the objects that match every given filter and the others, as two Blobs.

        name, namespace, kind and api_version are case-insensitive regexes (unanchored);
        labels is a dict every pair of which the object's metadata.labels must have.
        """
        fn = "filter_yaml"
        objects = yaml_objects(self.ctx, fn, yaml)
        fields = {k: want_str(fn, k, v or "", allow_blob=False) for k, v in (
            ("name", name), ("namespace", namespace), ("kind", kind),
            ("api_version", api_version))}
        selector = ObjectSelector.build(fn, **fields)
        if labels is not None and (not isinstance(labels, dict) or struct_kind(labels)):
            raise BuiltinError(f"{fn}: for parameter 'labels': got {type_name(labels)}, "
                               "want dict")
        wanted = want_str_dict(fn, "labels", labels)
        match: list[p.K8sObject] = []
        rest: list[p.K8sObject] = []
        for obj in objects:
            obj_labels = (obj.manifest().get("metadata") or {}).get("labels") or {}
            ok = selector.matches(obj) and all(obj_labels.get(k) == v for k, v in wanted.items())
            (match if ok else rest).append(obj)
        return blob(to_yaml(match)), blob(to_yaml(rest))

