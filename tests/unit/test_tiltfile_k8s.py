"""The Kubernetes builtins: k8s_yaml, k8s_resource, k8s_kind, k8s_image_json_path,
k8s_custom_deploy, port_forward, contexts, and the resources they assemble."""

from __future__ import annotations

import json

import pytest
from k8s_support import names, object_names, run_tiltfile

from devloop.model import plan as p
from devloop.tiltfile.errors import TiltfileError

SHOP = ("shop.yaml", "environment-crd.yaml")

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  {ns}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: main
          image: {image}
"""


def deploy(name: str, image: str = "busybox", namespace: str = "") -> str:
    ns = f"namespace: {namespace}" if namespace else ""
    return DEPLOY.format(name=name, image=image, ns=ns)


def fails(tmp_path, text, files=None, fixtures=()) -> TiltfileError:
    with pytest.raises(TiltfileError) as info:
        run_tiltfile(tmp_path, text, files, fixtures)
    return info.value


# ---------------------------------------------------------------------------- assembly


def test_multi_service_app_groups_each_workload_with_its_objects(tmp_path):
    result = run_tiltfile(tmp_path, """
        docker_build('shop/frontend', 'web')
        docker_build('gcr.io/shop/api', 'api')
        k8s_yaml(['shop.yaml', 'environment-crd.yaml'])
        k8s_kind('Environment', image_json_path='{.spec.runtime.image}')
    """, fixtures=SHOP)
    plan = result.plan
    assert names(plan) == ["frontend", "api", "db", "migrate", "preview", "nightly-report",
                           "uncategorized"]
    # Like Tilt: only Services join a workload; what its pods reference stays uncategorized.
    assert object_names(plan.resource("frontend")) == ["Deployment/frontend", "Service/frontend"]
    assert object_names(plan.resource("api")) == ["Deployment/api", "Service/api"]
    assert object_names(plan.resource("db")) == ["StatefulSet/db", "Service/db"]
    assert object_names(plan.resource("uncategorized")) == [
        "Namespace/shop-system", "ConfigMap/frontend-config", "Ingress/shop",
        "Secret/api-db-credentials", "PersistentVolumeClaim/db-data"]
    assert plan.resource("uncategorized").pod_readiness == "ignore"
    assert all(r.type is p.ResourceType.K8S for r in plan.resources)


def test_images_built_by_the_tiltfile_become_injections_and_image_refs(tmp_path):
    plan = run_tiltfile(tmp_path, """
        docker_build('shop/frontend', 'web')
        docker_build('gcr.io/shop/api', 'api')
        docker_build('shop/preview-runner', 'preview')
        k8s_yaml(['shop.yaml', 'environment-crd.yaml'])
        k8s_kind('Environment', image_json_path='{.spec.runtime.image}')
    """, fixtures=SHOP).plan
    frontend = plan.resource("frontend")
    assert frontend.image_refs == ("shop/frontend",)
    assert frontend.injections == (p.ImageInjection(
        "frontend:deployment.apps:default", "{.spec.template.spec.containers[0].image}",
        "shop/frontend"),)
    # the Job uses the api image with a tag: a build ref without a tag matches any tag
    assert plan.resource("migrate").image_refs == ("gcr.io/shop/api",)
    assert [(i.json_path, i.image_ref) for i in plan.resource("preview").injections] == [
        ("{.spec.runtime.image}", "shop/preview-runner")]
    assert plan.resource("db").image_refs == ()


def test_match_in_env_vars_injects_into_env_values(tmp_path):
    plan = run_tiltfile(tmp_path, """
        docker_build('gcr.io/shop/api', 'api')
        docker_build('shop/worker', 'worker', match_in_env_vars=True)
        k8s_yaml('shop.yaml')
    """, fixtures=("shop.yaml",)).plan
    api = plan.resource("api")
    assert api.image_refs == ("gcr.io/shop/api", "shop/worker")
    assert ("{.spec.template.spec.containers[0].env[1].value}", "shop/worker") in [
        (i.json_path, i.image_ref) for i in api.injections]


def test_env_values_are_ignored_without_match_in_env_vars(tmp_path):
    result = run_tiltfile(tmp_path, """
        docker_build('shop/worker', 'worker')
        k8s_yaml('shop.yaml')
    """, fixtures=("shop.yaml",))
    assert result.plan.resource("api").image_refs == ()
    assert any("Image not used in any deploy config" in w and "shop/worker" in w
               for w in result.plan.warnings)


def test_unused_image_warning_can_be_suppressed_and_skips_base_images(tmp_path):
    result = run_tiltfile(tmp_path, """
        docker_build('shop/base', 'base')
        docker_build('shop/frontend', 'web', dockerfile_contents='FROM shop/base\\nCOPY . .')
        k8s_yaml('shop.yaml')
    """, fixtures=("shop.yaml",))
    assert result.plan.warnings == ()


def test_a_base_named_in_a_continued_from_line_or_copy_from_is_used(tmp_path):
    result = run_tiltfile(tmp_path, """
        docker_build('shop/base', 'base')
        docker_build('shop/tools', 'base')
        docker_build('shop/frontend', 'web', dockerfile_contents=(
            'ARG BASE=shop/base\\nFROM --platform=linux/amd64 \\\\\\n  ${BASE} AS app\\n'
            + 'COPY --from=shop/tools /bin/x /bin/x'))
        k8s_yaml('shop.yaml')
    """, fixtures=("shop.yaml",))
    assert result.plan.warnings == ()


def test_custom_build_image_deps_come_before_the_image(tmp_path):
    plan = run_tiltfile(tmp_path, """
        custom_build('shop/base', 'make base', deps=['.'])
        custom_build('shop/frontend', 'make web', deps=['.'], image_deps=['shop/base'])
        k8s_yaml('shop.yaml')
    """, fixtures=("shop.yaml",)).plan
    assert plan.resource("frontend").image_refs == ("shop/base", "shop/frontend")
    assert plan.warnings == ()


def test_tagged_build_ref_only_matches_the_same_tag(tmp_path):
    plan = run_tiltfile(tmp_path, """
        docker_build('gcr.io/shop/api:latest', 'api')
        k8s_yaml('shop.yaml')
    """, fixtures=("shop.yaml",)).plan
    assert plan.resource("api").image_refs == ()
    assert plan.resource("migrate").image_refs == ("gcr.io/shop/api:latest",)


def test_clashing_workload_names_use_kind_then_namespace(tmp_path):
    plan = run_tiltfile(tmp_path, "k8s_yaml(['a.yaml', 'b.yaml', 'c.yaml'])\n", files={
        "a.yaml": deploy("web", namespace="one"),
        "b.yaml": deploy("web", namespace="two"),
        "c.yaml": deploy("api"),
    }).plan
    assert names(plan) == ["web:deployment:one", "web:deployment:two", "api"]


def test_resources_keep_yaml_order_across_calls(tmp_path):
    plan = run_tiltfile(tmp_path, """
        k8s_yaml('b.yaml')
        k8s_yaml('a.yaml')
    """, files={"a.yaml": deploy("alpha"), "b.yaml": deploy("beta")}).plan
    assert names(plan) == ["beta", "alpha"]


# ---------------------------------------------------------------------------- k8s_yaml


def test_k8s_yaml_accepts_a_blob_and_records_files_read(tmp_path):
    text = ("k8s_yaml(read_file('a.yaml'))\n"
            f"k8s_yaml(blob('''{deploy('inline')}'''))\n"
            "k8s_yaml('b.yaml')\n")
    result = run_tiltfile(tmp_path, text, files={"a.yaml": deploy("from-blob"),
                                                 "b.yaml": deploy("file")})
    assert names(result.plan) == ["from-blob", "inline", "file"]
    assert str(tmp_path / "b.yaml") in result.plan.config_files
    assert str(tmp_path / "a.yaml") in result.plan.config_files


def test_k8s_yaml_paths_are_relative_to_the_calling_file(tmp_path):
    plan = run_tiltfile(tmp_path, "load('svc/lib.star', 'x')\n", files={
        "svc/lib.star": "k8s_yaml('deploy.yaml')\nx = 1\n",
        "svc/deploy.yaml": deploy("svc")}).plan
    assert names(plan) == ["svc"]


def test_manifests_are_stored_as_canonical_json(tmp_path):
    plan = run_tiltfile(tmp_path, "k8s_yaml('a.yaml')\n", files={"a.yaml": deploy("web")}).plan
    obj = plan.resource("web").objects[0]
    assert (obj.api_version, obj.kind, obj.name, obj.namespace) == (
        "apps/v1", "Deployment", "web", "")
    assert json.loads(obj.manifest_json)["spec"]["template"]["spec"]["containers"][0][
        "image"] == "busybox"


def test_list_kind_documents_are_expanded(tmp_path):
    text = "apiVersion: v1\nkind: List\nitems:\n" + "".join(
        f"  - {{apiVersion: v1, kind: ConfigMap, metadata: {{name: c{n}}}}}\n" for n in range(2))
    plan = run_tiltfile(tmp_path, "k8s_yaml('l.yaml')\n", files={"l.yaml": text}).plan
    assert object_names(plan.resource("uncategorized")) == ["ConfigMap/c0", "ConfigMap/c1"]


def test_duplicate_objects_are_an_error_with_the_line(tmp_path):
    error = fails(tmp_path, "\nk8s_yaml('a.yaml')\nk8s_yaml('a.yaml')\n",
                  files={"a.yaml": deploy("web")})
    assert "Duplicate YAML Entity: web:deployment:default:apps" in error.message
    assert "allow_duplicates=True" in error.message
    assert error.location is not None and error.location.line == 3


def test_allow_duplicates_keeps_the_later_definition(tmp_path):
    plan = run_tiltfile(tmp_path, """
        k8s_yaml('a.yaml')
        k8s_yaml('b.yaml', allow_duplicates=True)
    """, files={"a.yaml": deploy("web", "one"), "b.yaml": deploy("web", "two")}).plan
    assert len(plan.resource("web").objects) == 1
    assert '"image":"two"' in plan.resource("web").objects[0].manifest_json


@pytest.mark.parametrize("text, content, message", [
    ("k8s_yaml('missing.yaml')", None, "k8s_yaml: file not found"),
    ("k8s_yaml(3)", None, "k8s_yaml: for parameter 'yaml': got int, want string"),
    ("k8s_yaml([])", None, "Empty or Invalid YAML Resource Detected"),
    ("k8s_yaml(blob(''))", None, "Empty or Invalid YAML Resource Detected"),
    ("k8s_yaml('a.yaml', allow_duplicates='yes')", "kind: x",
     "k8s_yaml: for parameter 'allow_duplicates': got string, want bool"),
    ("k8s_yaml('a.yaml', bogus=1)", "kind: x", "bogus"),
    ("k8s_yaml('a.yaml')", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n",
     "YAML parse error at line 5"),
    ("k8s_yaml('a.yaml')", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\n"
     "apiVersion: v1\nmetadata: {name: nokind}\n", "object 'nokind' at line 5 has no 'kind'"),
    ("k8s_yaml('a.yaml')", "- just\n- a list\n", "document at line 1 is a list"),
])
def test_k8s_yaml_errors(tmp_path, text, content, message):
    files = {"a.yaml": content} if content is not None else {}
    error = fails(tmp_path, "\n\n" + text + "\n", files)
    assert message in error.message
    assert error.location is not None and error.location.line == 3


# ---------------------------------------------------------------------------- k8s_resource


def test_k8s_resource_sets_options_on_a_workload(tmp_path):
    plan = run_tiltfile(tmp_path, """
        k8s_yaml('shop.yaml')
        k8s_resource('frontend', port_forwards=[8000, '8001:3000', '0.0.0.0:8002:3000',
                                                port_forward(9000, 3000, name='web',
                                                             link_path='/health')],
                     extra_pod_selectors=[{'app': 'frontend-canary'}],
                     trigger_mode=TRIGGER_MODE_MANUAL, resource_deps=['db'],
                     auto_init=False, labels=['web', 'team-a'],
                     links=['http://shop.localhost', link('http://x', 'docs')],
                     pod_readiness='wait', discovery_strategy='selectors-only')
    """, fixtures=("shop.yaml",)).plan
    frontend = plan.resource("frontend")
    assert frontend.port_forwards == (
        p.PortForward(8000, 0), p.PortForward(8001, 3000),
        p.PortForward(8002, 3000, host="0.0.0.0"),
        p.PortForward(9000, 3000, name="web", link_path="/health"))
    assert frontend.extra_pod_selectors == ((("app", "frontend-canary"),),)
    assert frontend.trigger_mode is p.TriggerMode.MANUAL
    assert frontend.resource_deps == ("db",)
    assert frontend.auto_init is False
    assert frontend.labels == ("web", "team-a")
    assert frontend.links == (p.Link("http://shop.localhost"), p.Link("http://x", "docs"))
    assert frontend.pod_readiness == "wait"
    assert frontend.discovery_strategy == "selectors-only"


def test_repeated_k8s_resource_calls_add_up(tmp_path):
    plan = run_tiltfile(tmp_path, """
        k8s_yaml('shop.yaml')
        k8s_resource('api', port_forwards=8001, labels='backend')
        k8s_resource('api', port_forwards=8000, trigger_mode=TRIGGER_MODE_MANUAL)
    """, fixtures=("shop.yaml",)).plan
    api = plan.resource("api")
    assert [pf.local_port for pf in api.port_forwards] == [8001, 8000]
    assert api.labels == ("backend",)
    assert api.trigger_mode is p.TriggerMode.MANUAL


def test_rename_and_rename_again(tmp_path):
    plan = run_tiltfile(tmp_path, """
        k8s_yaml('shop.yaml')
        k8s_resource('frontend', new_name='web')
        k8s_resource('web', new_name='www')
    """, fixtures=("shop.yaml",)).plan
    assert names(plan)[0] == "www"


def test_objects_form_a_new_resource_and_leave_uncategorized(tmp_path):
    plan = run_tiltfile(tmp_path, """
        k8s_yaml('shop.yaml')
        k8s_resource(new_name='setup', objects=['shop-system:Namespace'],
                     labels=['infra'])
        k8s_resource('db', objects=['shop:ingress:default'])
    """, fixtures=("shop.yaml",)).plan
    assert names(plan)[-2:] == ["setup", "uncategorized"]
    assert object_names(plan.resource("setup")) == ["Namespace/shop-system"]
    assert plan.resource("setup").pod_readiness == "ignore"
    assert "Ingress/shop" in object_names(plan.resource("db"))
    assert object_names(plan.resource("uncategorized")) == [
        "ConfigMap/frontend-config", "Secret/api-db-credentials",
        "PersistentVolumeClaim/db-data"]


@pytest.mark.parametrize("call, message", [
    ("k8s_resource('nope')", "k8s_resource: no workload found matching 'nope'. Known k8s "
     "resources: frontend, api, db, migrate"),
    ("k8s_resource(new_name='x', objects=['ghost'])",
     "no object identified by the fragment 'ghost' could be found"),
    ("k8s_resource(new_name='x', objects=['frontend'])", "'frontend' is not a unique fragment"),
    ("k8s_resource(new_name='x', objects=['frontend:deployment'])", "is a workload"),
    ("k8s_resource(new_name='x', objects=['a:b:c:d'])", "invalid object selector"),
    ("k8s_resource(new_name='api', objects=['shop'])", 'k8s_resource named "api" already'),
    ("k8s_resource('frontend', new_name='api')",
     "cannot rename 'frontend' to 'api': a resource with that name already exists"),
    ("k8s_resource(new_name='x', objects=['shop'])\nk8s_resource(new_name='y', "
     "objects=['shop'])", "could be found in remaining YAML"),
])
def test_k8s_resource_assembly_errors_point_at_the_call(tmp_path, call, message):
    error = fails(tmp_path, "k8s_yaml('shop.yaml')\n\n" + call + "\n",
                  fixtures=("shop.yaml",))
    assert message in error.message
    assert error.location is not None and error.location.line >= 3


@pytest.mark.parametrize("call, message", [
    ("k8s_resource()", "doesn't specify a workload or any objects"),
    ("k8s_resource(objects=['x'])", "doesn't provide a new_name"),
    ("k8s_resource('api', port_forwards='abc')",
     'k8s_resource "api": portForward port value \'abc\' is not in the valid range'),
    ("k8s_resource('api', port_forwards=70000)", "not in the valid range [0-65535]"),
    ("k8s_resource('api', port_forwards='bad_host:80:80')", "not a valid hostname"),
    ("k8s_resource('api', port_forwards=[1.5])", "got float"),
    ("k8s_resource('api', extra_pod_selectors='app=x')", "must be a dict or a list of dicts"),
    ("k8s_resource('api', trigger_mode=7)", "want TRIGGER_MODE_AUTO or TRIGGER_MODE_MANUAL"),
    ("k8s_resource('api', trigger_mode='manual')", "for parameter 'trigger_mode': got string"),
    ("k8s_resource('api', pod_readiness='maybe')", "want one of 'wait', 'ignore'"),
    ("k8s_resource('api', discovery_strategy='x')", "'default', 'selectors-only'"),
    ("k8s_resource('api', labels=['has space'])", "invalid label 'has space'"),
    ("k8s_resource('api', auto_init='no')", "for parameter 'auto_init': got string"),
    ("k8s_resource('api', links=[3])", "want string or link()"),
    ("k8s_resource('api', resource_deps=[1])", "for parameter 'resource_deps': got int"),
    ("k8s_resource('api', image='x')", "image"),
])
def test_k8s_resource_argument_errors(tmp_path, call, message):
    error = fails(tmp_path, "k8s_yaml('shop.yaml')\n" + call + "\n", fixtures=("shop.yaml",))
    assert message in error.message
    assert error.location is not None and error.location.line == 2


def test_port_forward_errors(tmp_path):
    assert "local_port': got string" in fails(tmp_path, "port_forward('x')\n").message
    assert "70000 is not in the valid range" in fails(
        tmp_path, "port_forward(80, 70000)\n").message


# ---------------------------------------------------------------------------- kinds


def test_k8s_kind_without_json_path_makes_a_workload(tmp_path):
    plan = run_tiltfile(tmp_path, """
        k8s_yaml('environment-crd.yaml')
        k8s_kind('environment', api_version='envs.example.com/v1alpha1', pod_readiness='ignore')
    """, fixtures=("environment-crd.yaml",)).plan
    assert names(plan) == ["preview", "nightly-report"]
    assert plan.resource("preview").pod_readiness == "ignore"


def test_uncategorized_crd_without_k8s_kind(tmp_path):
    plan = run_tiltfile(tmp_path, "k8s_yaml('environment-crd.yaml')\n",
                        fixtures=("environment-crd.yaml",)).plan
    assert names(plan) == ["nightly-report", "uncategorized"]


def test_k8s_image_json_path_by_name_with_wildcards(tmp_path):
    plan = run_tiltfile(tmp_path, """
        docker_build('shop/metrics', '.')
        docker_build('shop/log-shipper', '.')
        k8s_yaml('environment-crd.yaml')
        k8s_image_json_path('{.spec.sidecars[*].image}', name='prev')
    """, fixtures=("environment-crd.yaml",)).plan
    # the log shipper is tagged 1.2 in the YAML; the untagged build ref still matches
    assert [(i.json_path, i.image_ref) for i in plan.resource("preview").injections] == [
        ("{.spec.sidecars[0].image}", "shop/log-shipper"),
        ("{.spec.sidecars[1].image}", "shop/metrics")]


@pytest.mark.parametrize("call, message", [
    ("k8s_kind('Env', image_json_path='{.spec[}')", "invalid JSONPath"),
    ("k8s_kind('Env', 'v1')", "positional"),
    ("k8s_kind('(')", "invalid regexp"),
    ("k8s_kind('Env', pod_readiness='soon')", "want one of 'wait', 'ignore'"),
    ("k8s_image_json_path('{.spec.image}')", "at least one of kind, name, or namespace"),
    ("k8s_image_json_path(3, kind='x')", "got int"),
])
def test_kind_errors(tmp_path, call, message):
    error = fails(tmp_path, "\n" + call + "\n")
    assert message in error.message
    assert error.location is not None and error.location.line == 2


# ---------------------------------------------------------------------------- workload names


def test_workload_to_resource_function_names_resources(tmp_path):
    plan = run_tiltfile(tmp_path, """
        k8s_yaml('shop.yaml')
        def name(id):
            return id.namespace + '-' + id.name + '-' + id.kind.lower() + '-' + id.group
        workload_to_resource_function(name)
        k8s_resource('default-api-deployment-apps', port_forwards=8080)
    """, fixtures=("shop.yaml",)).plan
    assert names(plan)[:2] == ["default-frontend-deployment-apps", "default-api-deployment-apps"]
    assert plan.resource("default-api-deployment-apps").port_forwards[0].local_port == 8080


@pytest.mark.parametrize("body, message", [
    ("return 'same'", "both 'api:deployment:default:apps' and "
     "'frontend:deployment:default:apps' mapped to resource name 'same'"),
    ("return 1", "invalid return value. wanted: string. got: int"),
])
def test_workload_to_resource_function_errors(tmp_path, body, message):
    error = fails(tmp_path, f"""
        k8s_yaml('shop.yaml')
        def name(id):
            {body}
        workload_to_resource_function(name)
    """, fixtures=("shop.yaml",))
    assert message in error.message


# ---------------------------------------------------------------------------- custom deploy


def test_k8s_custom_deploy_makes_a_resource(tmp_path):
    plan = run_tiltfile(tmp_path, """
        docker_build('shop/frontend', 'web')
        k8s_custom_deploy('cd', apply_cmd='./apply.sh', delete_cmd=['kubectl', 'delete', 'x'],
                          deps=['web'], image_deps=['shop/frontend'],
                          apply_env={'A': '1'}, apply_dir='web',
                          live_update=[sync('web', '/app')], image_selector='shop/frontend')
        k8s_resource('cd', port_forwards=8000, labels=['custom'])
    """).plan
    cd = plan.resource("cd")
    assert cd.type is p.ResourceType.CUSTOM_DEPLOY
    assert cd.apply_cmd == p.CommandSpec(("sh", "-c", "./apply.sh"), True, (("A", "1"),),
                                         str(tmp_path / "web"))
    assert cd.delete_cmd is not None and cd.delete_cmd.argv == ("kubectl", "delete", "x")
    assert cd.deps == (str(tmp_path / "web"),)
    assert cd.image_refs == ("shop/frontend",)
    assert cd.live_update == (p.SyncStep(str(tmp_path / "web"), "/app"),)
    assert cd.image_selector == "shop/frontend"
    assert cd.port_forwards == (p.PortForward(8000, 0),) and cd.labels == ("custom",)
    assert plan.warnings == ()


@pytest.mark.parametrize("call, message", [
    ("k8s_custom_deploy('x', delete_cmd='d', deps=[])", "apply_cmd must be specified"),
    ("k8s_custom_deploy('x', apply_cmd='a', deps=[])", "delete_cmd must be specified"),
    ("k8s_custom_deploy('x', 'a', 'd', ['.'], live_update=[sync('.', '/a')])",
     "exactly one of image_selector or container_selector"),
    ("k8s_custom_deploy('x', 'a', 'd', [], apply_env='A=1')", "apply_env': got string"),
    ("k8s_custom_deploy('x', 'a', 'd', [], nope=1)", "nope"),
])
def test_k8s_custom_deploy_errors(tmp_path, call, message):
    error = fails(tmp_path, "\n" + call + "\n")
    assert message in error.message


# ---------------------------------------------------------------------------- contexts


def test_contexts_come_from_the_kubeconfig(tmp_path, monkeypatch):
    config = tmp_path / "kubeconfig"
    config.write_text("""
current-context: dev
contexts:
  - name: dev
    context: {cluster: c, namespace: shop}
  - name: other
    context: {cluster: c}
""")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{config}")
    result = run_tiltfile(tmp_path, """
        print(k8s_context(), k8s_namespace())
        allow_k8s_contexts(k8s_context())
        allow_k8s_contexts(['prod', 'staging'])
    """)
    assert result.output == ("dev shop",)
    settings = result.plan.settings
    assert settings.allowed_k8s_contexts == ("dev", "prod", "staging")
    assert (settings.k8s_context, settings.k8s_namespace) == ("dev", "shop")


def test_no_kubeconfig_means_empty_context_and_default_namespace(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    result = run_tiltfile(tmp_path, "print(repr(k8s_context()), k8s_namespace())\n")
    assert result.output == ('"" default',)


def test_allow_k8s_contexts_rejects_non_strings(tmp_path):
    assert "got int" in fails(tmp_path, "allow_k8s_contexts(3)\n").message
