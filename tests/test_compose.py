"""docker-compose.yml, its production override and the Dockerfile, checked without Docker.

The Compose Specification's JSON schema decides validity; the rest are the promises the
README makes to operators. tests/ops/test_compose_smoke.py runs the services themselves.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml
from dotenv import dotenv_values
from support.compose_stack import built_services, long_running_services, seconds

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = Path(__file__).resolve().parent / "vendor" / "compose-spec.json"  # see vendor/README.md
ENV_EXAMPLE = dotenv_values(ROOT / ".env.example")


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return load("docker-compose.yml")


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.prod.yml"])
def test_compose_files_validate_against_the_compose_spec(name: str):
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(load(name))


def test_the_stack_has_every_role(services: dict):
    assert {"proxy", "migrate", "web", "worker", "flower", "redis", "db",
            "mailpit"} <= set(services)
    assert set(built_services({"services": services})) == {
        "migrate", "web", "worker", "flower"}


def test_every_long_running_service_has_a_healthcheck_and_restarts(services: dict):
    for name in ("proxy", "web", "worker", "flower", "redis", "db", "mailpit"):
        assert "healthcheck" in services[name], name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["migrate"]["restart"] == "no"
    assert "healthcheck" not in services["migrate"]


def test_only_the_proxy_is_public_and_the_rest_binds_to_loopback(services: dict):
    assert services["proxy"]["ports"] == ["80:80", "443:443"]
    for name, service in services.items():
        if name == "proxy":
            continue
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_web_is_reached_through_the_proxy_only_and_trusts_exactly_it(services: dict):
    web = services["web"]
    assert "ports" not in web and web["expose"] == ["8000"]
    assert web["environment"]["TRUSTED_PROXIES"] == "1"
    # The rest of web's environment is the app's, as for every other role.
    assert web["environment"]["REDIS_URL"] == services["worker"]["environment"]["REDIS_URL"]
    assert services["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"


def nginx_directives(text: str) -> list[str]:
    return [" ".join(line.split("#")[0].split()) for line in text.splitlines()
            if line.split("#")[0].strip()]


def test_the_proxy_runs_the_shipped_config_with_a_mounted_certificate(services: dict):
    proxy = services["proxy"]
    mounts = {target: source for source, target, _ in
              (str(volume).split(":") for volume in proxy["volumes"])}
    shipped = mounts["/etc/nginx/conf.d/default.conf"]
    assert (ROOT / shipped).is_file()
    directives = nginx_directives((ROOT / shipped).read_text())
    certs = mounts["/etc/nginx/certs"]
    assert certs == "./deploy/certs"
    for wanted in (
        "listen 443 ssl default_server;",
        "ssl_certificate /etc/nginx/certs/fullchain.pem;",
        "ssl_certificate_key /etc/nginx/certs/privkey.pem;",
        "return 301 https://$host$request_uri;",
        "server web:8000;",
        "proxy_pass http://microblog_web;",
        "proxy_request_buffering on;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
    ):
        assert wanted in directives, wanted
    for timeout in ("client_header_timeout", "client_body_timeout"):
        [line] = [d for d in directives if d.startswith(timeout + " ")]
        assert seconds(line.split()[1].rstrip(";")) <= 15, line
    assert "/proxy-health" in " ".join(proxy["healthcheck"]["test"])


def test_migrations_run_once_before_web_and_worker(services: dict):
    assert services["migrate"]["command"][-2:] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_healthy_conditions_point_at_services_with_healthchecks(services: dict):
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            if rule.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)


def test_app_services_read_the_operators_env_file(services: dict):
    for name in built_services({"services": services}):
        assert services[name]["env_file"] == ".env", name


def test_web_is_checked_on_healthz(services: dict):
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "gunicorn" in services["web"]["command"]


def test_worker_scales_and_outlives_its_longest_task(services: dict):
    worker = services["worker"]
    # --scale worker=N needs neither a fixed name nor a published port.
    assert "container_name" not in worker and "ports" not in worker
    assert seconds(worker["stop_grace_period"]) > int(ENV_EXAMPLE["TASK_TIME_LIMIT"])
    test = " ".join(worker["healthcheck"]["test"])
    assert "inspect ping --destination celery@$$HOSTNAME" in test


def test_there_is_no_beat_every_worker_relays(compose: dict):
    """The outbox relay runs in every worker: no singleton service, no schedule volume."""
    assert "beat" not in compose["services"]
    assert not any("beat" in name for name in compose.get("volumes") or {})
    assert "beat" not in load("docker-compose.prod.yml")["services"]


def test_flower_has_auth_config_and_persistent_state_on_a_volume(services: dict):
    flower = services["flower"]
    command = " ".join(flower["command"])
    assert "--conf=flowerconfig.py" in command
    assert "--persistent=True" in command
    database = re.search(r"--db=(\S+)", command).group(1)
    mounts = [str(volume).split(":")[1] for volume in flower["volumes"]]
    assert any(database.startswith(mount + "/") for mount in mounts)
    # Credentials only from the environment (.env), never written into the compose file.
    assert "basic_auth" not in command and "basic-auth" not in command
    assert "FLOWER_BASIC_AUTH" in ENV_EXAMPLE
    assert "/healthcheck" in " ".join(flower["healthcheck"]["test"])


def test_redis_keeps_queued_emails(services: dict):
    command = services["redis"]["command"]
    assert "--appendonly" in command and "noeviction" in command
    assert any(str(volume).endswith(":/data") for volume in services["redis"]["volumes"])


def test_database_keeps_its_data_and_is_checked_with_pg_isready(services: dict):
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["db"]["volumes"]


def test_production_override_uses_a_real_relay_and_no_mailpit(compose: dict):
    override = load("docker-compose.prod.yml")["services"]
    assert override["mailpit"]["profiles"] == ["dev"]
    for name in built_services(compose):
        environment = override[name]["environment"]
        assert environment["MAIL_SERVER"].startswith("${MAIL_SERVER:?"), name
        assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"], name
    assert override["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    [certificates] = override["proxy"]["volumes"]
    assert certificates.startswith("${TLS_CERT_DIR:?")
    assert certificates.endswith(":/etc/nginx/certs:ro")


def test_long_running_services_are_what_the_smoke_test_checks(compose: dict):
    assert long_running_services(compose) == ["web", "worker", "flower"]


# -- Dockerfile ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in text.splitlines() if line.strip() and not line.startswith("#")]


def dockerignored(path: str) -> bool:
    ignored = False
    for pattern in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").replace("**/", "")
        parts = Path(path).parts
        if any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) or fnmatch.fnmatch(part, pattern)
               for i, part in enumerate(parts)):
            ignored = not negate
    return ignored


def test_image_is_slim_and_runs_as_a_user_without_root():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [argument for kind, argument in instructions if kind == "USER"]
    assert users and users[-1] not in {"root", "0"}


def test_dependencies_install_before_the_source_is_copied():
    copies = [argument for kind, argument in dockerfile_instructions() if kind == "COPY"]
    assert "pyproject.toml" in copies[0]
    assert all("pyproject.toml" not in copy for copy in copies[1:])


def test_everything_the_image_copies_exists_and_is_in_the_build_context():
    for kind, argument in dockerfile_instructions():
        if kind != "COPY":
            continue
        *sources, _ = shlex.split(argument)
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not dockerignored(source), f"{source} is excluded by .dockerignore"


def test_secrets_and_local_state_stay_out_of_the_build_context():
    for path in (".env", ".git", ".venv", "instance/microblog.db", "tests/conftest.py",
                 "deploy/certs/privkey.pem"):
        assert dockerignored(path), path
    assert not dockerignored(".env.example")


def test_the_image_has_the_files_the_compose_commands_name(services: dict):
    copied = " ".join(argument for kind, argument in dockerfile_instructions() if kind == "COPY")
    for name in built_services({"services": services}):
        for arg in services[name]["command"]:
            for config in re.findall(r"[\w.]+\.py", arg):
                assert config in copied, (name, config)
