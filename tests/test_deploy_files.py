"""The deploy files agree with the code: Dockerfile, docker-compose.yml, .env.example and the
Kubernetes manifests (deploy/kubernetes; their schema validation is `make deploy-check`).

No Docker engine is needed: the files are parsed, the commands they run are parsed by the
real CLI (without running it), and their settings are fed to the real Settings class.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml  # PyYAML, installed with uvicorn[standard]
from cryptography.fernet import Fernet, MultiFernet
from pydantic import ValidationError

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "api", "worker")
LONG_RUNNING = ("postgres", "redis", "api", "worker")
# The CLI as DESIGN.md names it; used only until app/cli.py exists.
DESIGNED_SUBCOMMANDS = {"api", "worker", "migrate", "dev", "simulate", "status", "replay"}
# Read by docker compose for interpolation, never by the service.
COMPOSE_ONLY_VARIABLES = {"POSTGRES_PASSWORD", "API_PORT", "WORKER_REPLICAS"}


# --- reading the files ----------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return dict(services[name])


@cache
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def instructions(keyword: str) -> list[str]:
    return [rest for kw, rest in dockerfile() if kw == keyword]


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in dockerfile():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def exec_form(arguments: str) -> list[str]:
    argv = json.loads(arguments)
    assert isinstance(argv, list), f"not an exec-form command: {arguments}"
    return [str(a) for a in argv]


_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}|\$\$")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `$$`, for one value."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group("name", "op", "default")
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        return env.get(name, "")

    return _VARIABLE.sub(substitute, value)


def service_environment(name: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    environment = service(name).get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: interpolate(str(value), env or {}) for key, value in environment.items()}


def settings_variables() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def env_example(*, commented: bool = True) -> dict[str, str]:
    """`NAME=value` lines of .env.example; with commented=False only those a copied `.env`
    sets, otherwise also the documented defaults (`# NAME=value`)."""
    pattern = re.compile(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)" if commented else r"([A-Z][A-Z0-9_]*)=(.*)")
    entries: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if match := pattern.fullmatch(line.strip()):
            entries[match.group(1)] = match.group(2)
    return entries


def fernet_keys(settings: Settings) -> list[Fernet]:
    return [Fernet(key.get_secret_value()) for key in settings.encryption_key]


def make_settings(variables: Mapping[str, str]) -> Settings:
    values: dict[str, Any] = {name.lower(): value for name, value in variables.items()}
    return Settings(_env_file=None, **values)


# --- the CLI ----------------------------------------------------------------------------------


@cache
def cli_group() -> Any:
    """The real `procore-hooks` command tree (a click group; typer may vendor click), or None
    while app/cli.py does not exist yet."""
    if not (ROOT / "app" / "cli.py").exists():
        return None
    module = importlib.import_module("app.cli")
    apps = [value for value in vars(module).values() if isinstance(value, typer.Typer)]
    assert len(apps) == 1, "app/cli.py should define exactly one typer.Typer"
    return typer.main.get_command(apps[0])


def assert_real_command(argv: list[str]) -> None:
    """`argv` parses as a `procore-hooks` subcommand with valid options (nothing is run)."""
    assert argv[0] == "procore-hooks", f"{argv}: not the project's console script"
    assert len(argv) > 1, f"{argv}: no subcommand"
    name, args = argv[1], argv[2:]
    group = cli_group()
    if group is None:
        assert name in DESIGNED_SUBCOMMANDS, f"{argv}: unknown subcommand {name!r}"
        return
    parent = typer.Context(group, info_name="procore-hooks")
    command = group.get_command(parent, name)
    assert command is not None, f"{argv}: app/cli.py has no subcommand {name!r}"
    try:
        command.make_context(name, list(args), parent=parent)
    except Exception as exc:  # click's UsageError, from click or typer's vendored copy
        if not hasattr(exc, "format_message"):
            raise
        pytest.fail(f"{argv}: {exc.format_message()}")


def commands_in_deploy_files() -> Iterator[tuple[str, list[str]]]:
    yield "Dockerfile CMD", exec_form(instructions("CMD")[-1])
    for name in APP_SERVICES:
        yield f"compose {name}", [str(a) for a in service(name)["command"]]
    worker_check = service("worker")["healthcheck"]["test"]
    yield "compose worker healthcheck", [str(a) for a in worker_check[1:]]
    for where, container in kubernetes_containers():
        yield f"kubernetes {where}", [str(a) for a in container["command"]]


# --- deploy/kubernetes -------------------------------------------------------------------------

KUBERNETES = ROOT / "deploy" / "kubernetes"
# The Dockerfile's USER, which the pods' security contexts must name.
IMAGE_UID = 10001
# The Postgres the manifests are sized for (config.yaml says so): the worst case must stay well
# under it.
POSTGRES_MAX_CONNECTIONS = 200


@cache
def kubernetes_resources() -> tuple[dict[str, Any], ...]:
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return tuple(found)


def kubernetes(kind: str) -> list[dict[str, Any]]:
    return [r for r in kubernetes_resources() if r["kind"] == kind]


def kubernetes_one(kind: str, name: str) -> dict[str, Any]:
    [resource] = [r for r in kubernetes(kind) if r["metadata"]["name"] == name]
    return resource


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in ("Deployment", "Job"):
        for resource in kubernetes(kind):
            yield resource["metadata"]["name"], resource["spec"]["template"]["spec"]


def kubernetes_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, spec in pod_specs():
        for key in ("initContainers", "containers"):
            for container in spec.get(key, []):
                yield f"{name}/{container['name']}", container


def kubernetes_settings() -> dict[str, str]:
    """What the pods read from the ConfigMap and the Secret, as environment variables."""
    values = {
        k: str(v) for k, v in kubernetes_one("ConfigMap", "procore-hooks-config")["data"].items()
    }
    values.update(kubernetes_one("Secret", "procore-hooks-secrets")["stringData"])
    return values


def secret_settings() -> set[str]:
    """Settings that hold credentials: the SecretStr fields, and the URLs that embed a password."""
    secret = {
        name.upper()
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    return secret | {"DATABASE_URL", "REDIS_URL"}


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (cpu: 500m, "1"; memory: 192Mi) as a plain number."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def test_kustomization_lists_every_manifest_and_names_the_image() -> None:
    kustomization = yaml.safe_load((KUSTOMIZATION := KUBERNETES / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")} - {KUSTOMIZATION.name}
    assert listed == on_disk
    [image] = kustomization["images"]
    for where, container in kubernetes_containers():
        assert container["image"] == image["name"], f"{where}: the image override misses it"


def test_kubernetes_has_the_processes_of_the_design() -> None:
    assert {d["metadata"]["name"] for d in kubernetes("Deployment")} == {
        "procore-hooks-api",
        "procore-hooks-worker",
    }
    [job] = kubernetes("Job")
    [migrate] = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["procore-hooks", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    for name in ("procore-hooks-api", "procore-hooks-worker"):
        spec = kubernetes_one("Deployment", name)["spec"]["template"]["spec"]
        [wait] = spec["initContainers"]
        assert wait["command"][:3] == ["procore-hooks", "migrate", "--wait"], name


def test_kubernetes_names_only_settings_the_service_reads() -> None:
    known = settings_variables()
    unknown = set(kubernetes_settings()) - known
    assert not unknown, f"ConfigMap/Secret name variables Settings does not read: {unknown}"
    for where, container in kubernetes_containers():
        names = {item["name"] for item in container.get("env", [])}
        assert names <= known, f"{where} sets {names - known}, which Settings does not read"
        sources = {next(iter(source.values()))["name"] for source in container.get("envFrom", [])}
        assert sources == {"procore-hooks-config", "procore-hooks-secrets"}, where


def test_kubernetes_keeps_credentials_in_the_secret() -> None:
    config = set(kubernetes_one("ConfigMap", "procore-hooks-config")["data"])
    secret = set(kubernetes_one("Secret", "procore-hooks-secrets")["stringData"])
    assert not config & secret_settings(), "a credential in the ConfigMap"
    assert secret == secret_settings(), "the Secret holds the credentials, and only them"


def test_kubernetes_settings_are_production_and_refuse_their_placeholders() -> None:
    values = kubernetes_settings()
    with pytest.raises(ValidationError) as refused:
        make_settings(values)
    message = str(refused.value)
    for name in (
        "WEBHOOK_AUTH_TOKENS",
        "ADMIN_TOKEN",
        "JOBS_TOKEN",
        "ENCRYPTION_KEY",
        "METRICS_TOKEN",
        "SETUP_LINK_KEYS",
        "EMBED_KEYS",
    ):
        assert f"{name} holds a placeholder value" in message, name
    assert "PROCORE_CLIENT_SECRET holds a placeholder value" in message
    assert "PROCORE_CLIENT_ID is not set" in message

    real = {
        **values,
        "WEBHOOK_AUTH_TOKENS": "w3bh00k-secret-5d1f8a2c7e9b3046d1a2",
        "ADMIN_TOKEN": "4dm1n-token-0c7e2b9f4a1d6e3852b7",
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "PROCORE_CLIENT_ID": "client-id",
        "PROCORE_CLIENT_SECRET": "client-s3cret",
        "JOBS_TOKEN": "j0bs-token-5c1e8a3f6b9d2e7041c5a8f2",
        "METRICS_TOKEN": "m3trics-token-9e4a1c7f2b5d8e0361a4",
        "SETUP_LINK_KEYS": "s3tup-link-key-3b8e1f6a9c2d5e7041b8",
        "EMBED_KEYS": "3mbed-key-value-7a2c9e4f1b6d3e8052c9",
    }
    settings = make_settings(real)
    assert settings.app_env == "production"
    assert settings.log_format == "json"


def test_kubernetes_pods_run_as_the_image_user_with_a_read_only_root() -> None:
    for name, spec in pod_specs():
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] == IMAGE_UID, name
        assert context["runAsGroup"] == IMAGE_UID, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        tmp = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        assert "tmp" in tmp, f"{name}: a read-only root needs a writable /tmp"
    for where, container in kubernetes_containers():
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, where
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["capabilities"] == {"drop": ["ALL"]}, where
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, where
    assert f"USER {IMAGE_UID}:{IMAGE_UID}" in (ROOT / "Dockerfile").read_text()


def test_kubernetes_containers_have_requests_within_limits() -> None:
    for where, container in kubernetes_containers():
        resources = container["resources"]
        for key in ("cpu", "memory"):
            request = quantity(resources["requests"][key])
            limit = quantity(resources["limits"][key])
            assert 0 < request <= limit, (where, key)


def test_kubernetes_api_probes_use_its_health_routes() -> None:
    from app.main import create_app

    paths = create_app(make_settings({})).openapi()["paths"]
    [api] = kubernetes_one("Deployment", "procore-hooks-api")["spec"]["template"]["spec"][
        "containers"
    ]
    port = api["command"][api["command"].index("--port") + 1]
    assert [p["containerPort"] for p in api["ports"] if p["name"] == "http"] == [int(port)]
    assert api["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert "get" in paths[api[probe]["httpGet"]["path"]], probe
    # One process per pod: pods scale, processes do not share metrics files.
    assert api["command"][api["command"].index("--workers") + 1] == "1"
    assert "PROMETHEUS_MULTIPROC_DIR" not in kubernetes_settings()


def test_kubernetes_worker_probes_are_served_on_its_metrics_port() -> None:
    from app.health.worker import WorkerHealth
    from app.metrics.exposition import MetricsServer

    [worker] = kubernetes_one("Deployment", "procore-hooks-worker")["spec"]["template"]["spec"][
        "containers"
    ]
    [port] = [p["containerPort"] for p in worker["ports"] if p["name"] == "metrics"]
    assert int(kubernetes_settings()["WORKER_METRICS_PORT"]) == port
    assert worker["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "metrics"}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "metrics"}

    health = WorkerHealth(stale_seconds=60)
    health.beat()
    server = MetricsServer(make_settings({}), "127.0.0.1", 0, health)
    server.start()
    try:
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            path = worker[probe]["httpGet"]["path"]
            answer = httpx.get(f"http://127.0.0.1:{server.port}{path}", timeout=5)
            assert answer.status_code == 200, (probe, answer.text)
        health.redis_up = False
        not_ready = httpx.get(f"http://127.0.0.1:{server.port}/health/ready", timeout=5)
        assert not_ready.status_code == 503
        assert not_ready.json()["detail"] == "Redis does not answer"
        live = httpx.get(f"http://127.0.0.1:{server.port}/health/live", timeout=5)
        assert live.status_code == 200, "a Redis outage is no reason to restart a worker"
    finally:
        server.stop()


def test_kubernetes_services_select_their_pods_by_port_name() -> None:
    for svc in kubernetes("Service"):
        selector = svc["spec"]["selector"]
        [deployment] = [
            d
            for d in kubernetes("Deployment")
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        ports = {
            p["name"]
            for c in deployment["spec"]["template"]["spec"]["containers"]
            for p in c["ports"]
        }
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports, svc["metadata"]["name"]


def test_kubernetes_deployments_autoscale_with_a_disruption_budget() -> None:
    for deployment in kubernetes("Deployment"):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert "replicas" not in deployment["spec"], f"{name}: the autoscaler owns the count"
        [hpa] = [
            h
            for h in kubernetes("HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]["name"] == name
        ]
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], name
        [pdb] = [
            p
            for p in kubernetes("PodDisruptionBudget")
            if p["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        allowed = pdb["spec"].get("maxUnavailable", 0) or (
            hpa["spec"]["minReplicas"] - pdb["spec"]["minAvailable"]
        )
        assert allowed >= 1, f"{name}: the budget would block every node drain"


def test_kubernetes_connection_budget_fits_postgres() -> None:
    """At the autoscalers' maximum, every process's pool together, as config.yaml states it."""
    settings = make_settings(kubernetes_settings() | {"APP_ENV": "development"})
    per_process = settings.database_pool_size + settings.database_max_overflow
    extra = {"procore-hooks-api": settings.ingest_connections}  # the api's webhook writer
    worst = 0
    for hpa in kubernetes("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]["name"]
        worst += hpa["spec"]["maxReplicas"] * (per_process + extra.get(target, 0))
    assert worst <= 0.6 * POSTGRES_MAX_CONNECTIONS
    stated = (KUBERNETES / "config.yaml").read_text()
    assert f"that is {worst} connections" in stated
    assert f"max_connections of at least {POSTGRES_MAX_CONNECTIONS}" in stated


# --- docker-compose.yml -----------------------------------------------------------------------


def test_compose_has_the_processes_of_the_design() -> None:
    assert set(compose()["services"]) >= {"postgres", "redis", *APP_SERVICES}
    assert str(service("postgres")["image"]).startswith("postgres:15")
    assert str(service("redis")["image"]).startswith("redis:7")


def test_migrate_is_a_one_shot_that_gates_api_and_worker() -> None:
    migrate = service("migrate")
    assert migrate["command"] == ["procore-hooks", "migrate"]
    assert str(migrate.get("restart", "no")) == "no", "a one-shot must not be restarted"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends_on = service(name)["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name


def test_api_and_worker_wait_for_healthy_postgres_and_redis() -> None:
    for name in ("api", "worker"):
        depends_on = service(name)["depends_on"]
        for dependency in ("postgres", "redis"):
            assert depends_on[dependency]["condition"] == "service_healthy", (name, dependency)


def test_long_running_services_have_healthchecks_and_migrate_has_none() -> None:
    for name in LONG_RUNNING:
        healthcheck = service(name).get("healthcheck")
        assert healthcheck, f"{name} has no healthcheck"
        assert healthcheck.get("test"), f"{name} has no healthcheck test"
        assert not healthcheck.get("disable"), name
    # The image's api HEALTHCHECK would mark a finished one-shot unhealthy.
    assert service("migrate")["healthcheck"] == {"disable": True}


def test_worker_health_is_its_heartbeat_check() -> None:
    test = service("worker")["healthcheck"]["test"]
    assert test == ["CMD", "procore-hooks", "worker", "--check"]


def test_api_liveness_probe_matches_the_port_it_serves() -> None:
    api = service("api")
    command = api["command"]
    port = command[command.index("--port") + 1]
    probe = " ".join(api["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/health/live" in probe
    assert any(str(p).endswith(f":{port}") for p in api["ports"])


def test_compose_runs_one_api_process_per_container() -> None:
    """More api throughput is more containers; processes never share metrics files here."""
    command = [str(a) for a in service("api")["command"]]
    assert command[command.index("--workers") + 1] == "1"
    for name in APP_SERVICES:
        assert "PROMETHEUS_MULTIPROC_DIR" not in service_environment(name), name


def test_worker_replicas_are_scalable() -> None:
    worker = service("worker")
    assert "ports" not in worker, "a published port would stop --scale worker=N"
    assert "replicas" in worker.get("deploy", {})
    assert "container_name" not in worker


def test_compose_sets_only_settings_fields() -> None:
    known = settings_variables()
    for name in APP_SERVICES:
        unknown = set(service_environment(name)) - known
        assert not unknown, f"compose {name} sets variables Settings does not read: {unknown}"


def test_compose_reads_an_optional_env_file() -> None:
    for name in APP_SERVICES:
        env_files = service(name)["env_file"]
        assert {"path": ".env", "required": False} in env_files, name


def test_compose_defaults_run_in_development_and_are_refused_in_production() -> None:
    for name in APP_SERVICES:
        defaults = service_environment(name)
        settings = make_settings(defaults)
        assert settings.app_env == "development"
        assert settings.database_url.startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in settings.database_url, "compose talks to its own postgres"
        assert settings.redis_url.startswith("redis://redis:")
        MultiFernet(fernet_keys(settings))  # the development key is a real Fernet key

        with pytest.raises(ValidationError) as refused:
            make_settings({**defaults, "APP_ENV": "production"})
        for secret in ("WEBHOOK_AUTH_TOKENS", "ADMIN_TOKEN", "ENCRYPTION_KEY"):
            assert f"{secret} holds a placeholder value" in str(refused.value), (name, secret)


def test_compose_variables_are_overridable_by_env() -> None:
    overridden = service_environment(
        "api", {"APP_ENV": "production", "WEBHOOK_AUTH_TOKENS": "s3cret"}
    )
    assert overridden["APP_ENV"] == "production"
    assert overridden["WEBHOOK_AUTH_TOKENS"] == "s3cret"


def _compose_v2() -> list[str] | None:
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for candidate in candidates:
        try:
            answer = subprocess.run(
                [*candidate, "version", "--short"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        major = answer.stdout.strip().lstrip("v").split(".")[0]
        if answer.returncode == 0 and major.isdigit() and int(major) >= 2:
            return candidate
    return None


def test_compose_file_validates_with_docker_compose() -> None:
    client = _compose_v2()
    if client is None:
        pytest.skip("no Docker Compose v2 client here (the parsed checks above still ran)")
    answer = subprocess.run(
        [*client, "--project-directory", str(ROOT), "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr


# --- commands -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "argv"), list(commands_in_deploy_files()), ids=lambda v: str(v))
def test_deploy_commands_are_real_cli_commands(where: str, argv: list[str]) -> None:
    assert_real_command(argv)


def test_health_routes_the_probes_use_exist() -> None:
    from app.main import create_app

    paths = create_app(make_settings({})).openapi()["paths"]
    if not any(path.startswith("/health") for path in paths):
        pytest.skip("the health router is not registered in app.main yet")
    assert "get" in paths.get("/health/live", {}), "the probes call GET /health/live"


# --- Dockerfile ---------------------------------------------------------------------------------


def _runtime_image() -> str:
    args = dict(arg.split("=", 1) for arg in instructions("ARG") if "=" in arg)
    image = stages()[-1][0][1].split()[0]
    return interpolate(image, args)


def test_dockerfile_is_multi_stage_on_python_slim() -> None:
    assert len(stages()) >= 2, "a builder stage and a runtime stage"
    assert _runtime_image() == "python:3.11-slim"
    runtime_copies = [rest for kw, rest in stages()[-1] if kw == "COPY"]
    assert any("--from=builder" in rest for rest in runtime_copies)


def test_dockerfile_runtime_is_non_root() -> None:
    users = [rest for kw, rest in stages()[-1] if kw == "USER"]
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_operates_like_the_compose_file() -> None:
    assert "8000" in " ".join(instructions("EXPOSE")).split()
    assert instructions("STOPSIGNAL") == ["SIGTERM"]
    env = " ".join(instructions("ENV"))
    assert "PYTHONUNBUFFERED=1" in env
    assert "APP_ENV=production" in env, "the image must not default to development"
    (healthcheck,) = instructions("HEALTHCHECK")
    assert "http://127.0.0.1:8000/health/live" in healthcheck
    assert exec_form(instructions("CMD")[-1])[:2] == ["procore-hooks", "api"]


def test_dockerfile_sets_only_settings_fields() -> None:
    known = settings_variables()
    for env in instructions("ENV"):
        for name in re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=", env):
            if name.startswith(("PYTHON", "PIP_")) or name in {"PATH", "VIRTUAL_ENV"}:
                continue
            assert name in known, f"Dockerfile sets {name}, which Settings does not read"


def _dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also covers what is below."""
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/").removeprefix("**/")
        parts = Path(path).parts
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))] + list(parts)
        if any(fnmatch.fnmatch(c, pattern) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_secrets_out_and_build_sources_in() -> None:
    # The simulator is development-only: it never reaches the production image.
    for secret in (".env", ".git", ".venv", "tests/conftest.py", "simulator/__init__.py"):
        assert _dockerignore_excludes(secret), secret
    for kw, rest in stages()[0]:
        if kw != "COPY" or "--from" in rest:
            continue
        for source in rest.split()[:-1]:
            assert not _dockerignore_excludes(source), f"COPY {source} but .dockerignore drops it"
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"


# --- .env.example -------------------------------------------------------------------------------


def test_env_example_documents_every_setting() -> None:
    documented = set(env_example())
    missing = settings_variables() - documented
    assert not missing, f".env.example does not document: {sorted(missing)}"
    unknown = documented - settings_variables() - COMPOSE_ONLY_VARIABLES
    assert not unknown, f".env.example names variables nobody reads: {sorted(unknown)}"


def test_env_example_runs_in_development_and_is_refused_in_production() -> None:
    active = env_example(commented=False)
    settings = make_settings(active)
    assert settings.app_env == "development"
    MultiFernet(fernet_keys(settings))

    with pytest.raises(ValidationError) as refused:
        make_settings({**active, "APP_ENV": "production"})
    message = str(refused.value)
    for name in ("WEBHOOK_AUTH_TOKENS", "ADMIN_TOKEN", "ENCRYPTION_KEY"):
        assert f"{name} holds a placeholder value" in message, name
    assert "PROCORE_CLIENT_ID is not set" in message


def test_env_example_tells_how_to_generate_a_fernet_key() -> None:
    text = (ROOT / ".env.example").read_text()
    assert "Fernet.generate_key().decode()" in text
