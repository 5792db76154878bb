"""helm(), kustomize() and filter_yaml(): the builtins that produce or split YAML."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
from k8s_support import names, object_names, run_tiltfile

from devloop.tiltfile.errors import TiltfileError

HAS_KUSTOMIZE = bool(shutil.which("kustomize") or shutil.which("kubectl"))


def fails(tmp_path, text, files=None, fixtures=()) -> TiltfileError:
    with pytest.raises(TiltfileError) as info:
        run_tiltfile(tmp_path, text, files, fixtures)
    return info.value


# ---------------------------------------------------------------------------- filter_yaml


def test_filter_yaml_splits_by_kind_and_name_regexes(tmp_path):
    result = run_tiltfile(tmp_path, """
        services, rest = filter_yaml('shop.yaml', kind='^service$')
        k8s_yaml(services)
        apis, _ = filter_yaml(rest, name='^API', kind='deploy')
        k8s_yaml(apis)
        print(type(services), str(rest).count('kind:'))
    """, fixtures=("shop.yaml",))
    assert names(result.plan) == ["api", "uncategorized"]
    assert object_names(result.plan.resource("api")) == ["Deployment/api", "Service/api"]
    assert result.output == ("blob 9",)
    assert str(tmp_path / "shop.yaml") in result.plan.config_files


def test_filter_yaml_by_labels_namespace_and_api_version(tmp_path):
    result = run_tiltfile(tmp_path, """
        match, rest = filter_yaml(read_file('a.yaml'), labels={'team': 'web'},
                                  namespace='prod', api_version='apps/')
        print(str(match).count('kind:'), str(rest).count('kind:'))
        k8s_yaml(match)
    """, files={"a.yaml": """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: prod, labels: {team: web}}
        spec: {template: {metadata: {labels: {app: web}}, spec: {containers: []}}}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: dev, labels: {team: web}}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: web, namespace: prod, labels: {team: web}}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: api, namespace: prod, labels: {team: api}}
    """})
    assert result.output == ("1 3",)
    assert names(result.plan) == ["web"]


def test_filter_yaml_with_nothing_matching_gives_an_empty_blob(tmp_path):
    result = run_tiltfile(tmp_path, """
        match, rest = filter_yaml('shop.yaml', kind='NoSuchKind')
        print(repr(str(match)))
    """, fixtures=("shop.yaml",))
    assert result.output == ('""',)


@pytest.mark.parametrize("call, message", [
    ("filter_yaml('shop.yaml', labels='team=web')", "for parameter 'labels': got string"),
    ("filter_yaml('shop.yaml', name='(')", "for parameter 'name': invalid regexp"),
    ("filter_yaml('missing.yaml')", "filter_yaml: file not found"),
    ("filter_yaml('shop.yaml', kinds='x')", "kinds"),
])
def test_filter_yaml_errors(tmp_path, call, message):
    error = fails(tmp_path, "\n" + call + "\n", fixtures=("shop.yaml",))
    assert message in error.message
    assert error.location is not None and error.location.line == 2


# ---------------------------------------------------------------------------- helm


def test_helm_without_the_binary_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    error = fails(tmp_path, """
        print('rendering')
        k8s_yaml(helm('chart'))
    """, fixtures=("chart",))
    assert "helm: the helm binary is not installed" in error.message
    assert error.location is not None and error.location.line == 3


def _fake_helm(tmp_path) -> str:
    """A stand-in `helm` that prints its arguments and a two-object chart with a test."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "helm"
    script.write_text("""#!/bin/sh
echo "$*" > helm-args.txt
cat <<'EOF'
---
# Source: shop/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-web
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: shop/frontend}]
---
# Source: shop/templates/tests/test-connection.yaml
apiVersion: v1
kind: Pod
metadata:
  name: shop-test
spec:
  containers: [{name: t, image: busybox}]
EOF
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(bindir)


def test_helm_runs_helm_template_with_the_arguments(tmp_path, monkeypatch):
    bindir = _fake_helm(tmp_path)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ["PATH"])
    result = run_tiltfile(tmp_path, """
        yaml = helm('chart', name='shop', namespace='web', values=['chart/values.yaml'],
                    set=['replicas=2'], kube_version='1.29')
        k8s_yaml(yaml)
    """, fixtures=("chart",))
    chart = str(tmp_path / "chart")
    assert (tmp_path / "helm-args.txt").read_text().strip() == (
        f"template shop {chart} --namespace web --values {chart}/values.yaml "
        "--set replicas=2 --kube-version 1.29 --include-crds")
    web = result.plan.resource("shop-web")
    assert web.objects[0].namespace == "web"  # helm template leaves it empty; we set it
    assert names(result.plan) == ["shop-web"]  # the chart's test pod is dropped
    assert str(tmp_path / "chart" / "templates" / "deployment.yaml") in result.plan.config_files


def test_helm_skip_crds_and_default_release_name(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _fake_helm(tmp_path) + os.pathsep + os.environ["PATH"])
    result = run_tiltfile(tmp_path, "print(str(helm('chart', skip_crds=True)).count('kind:'))\n",
                          fixtures=("chart",))
    assert result.output == ("1",)
    assert (tmp_path / "helm-args.txt").read_text().strip() == f"template {tmp_path / 'chart'}"


@pytest.mark.parametrize("call, message", [
    ("helm('nochart')", "helm: chart not found"),
    ("helm('chart', values=['missing.yaml'])", "helm: values file not found"),
    ("helm('chart', set='a=1', skip_crds='yes')", "for parameter 'skip_crds': got string"),
    ("helm('chart', version='1')", "version"),
])
def test_helm_argument_errors(tmp_path, call, message):
    error = fails(tmp_path, "\n" + call + "\n", fixtures=("chart",))
    assert message in error.message


def test_helm_command_failure_shows_stderr(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "helm").write_text("#!/bin/sh\necho 'Error: chart is broken' >&2\nexit 1\n")
    (bindir / "helm").chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    error = fails(tmp_path, "helm('chart')\n", fixtures=("chart",))
    assert "failed with exit code 1" in error.message
    assert "Error: chart is broken" in error.message


# ---------------------------------------------------------------------------- kustomize


@pytest.mark.skipif(not HAS_KUSTOMIZE, reason="neither kustomize nor kubectl is installed")
def test_kustomize_builds_the_directory(tmp_path):
    result = run_tiltfile(tmp_path, "k8s_yaml(kustomize('kustomize/base'))\n",
                          fixtures=("kustomize",))
    web = result.plan.resource("dev-web")
    assert '"env":"dev"' in web.objects[0].manifest_json
    assert str(tmp_path / "kustomize" / "base" / "deployment.yaml") in result.plan.config_files


def test_kustomize_without_any_binary_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    error = fails(tmp_path, "\nkustomize('kustomize/base')\n", fixtures=("kustomize",))
    assert "kustomize: neither kustomize nor kubectl is installed" in error.message
    assert error.location is not None and error.location.line == 2


def test_kustomize_with_an_explicit_binary_and_flags(tmp_path):
    fake = tmp_path / "kz"
    fake.write_text("#!/bin/sh\necho \"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: args}\n"
                    "data: {args: '$*'}\"\n")
    fake.chmod(0o755)
    result = run_tiltfile(tmp_path, f"""
        k8s_yaml(kustomize('kustomize/base', kustomize_bin='{fake}', flags=['--enable-helm']))
    """, fixtures=("kustomize",))
    manifest = result.plan.resource("uncategorized").objects[0].manifest_json
    assert f"build {tmp_path}/kustomize/base --enable-helm" in manifest


def test_kustomize_missing_directory(tmp_path):
    assert "kustomize: directory not found" in fails(tmp_path, "kustomize('nope')\n").message
