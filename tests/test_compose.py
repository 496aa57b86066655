"""docker-compose.yml is a valid Compose file (no Docker engine here: the schema decides)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_validates_against_the_compose_spec(compose: dict):
    if not SCHEMA.exists():
        pytest.skip(f"the Compose schema is not beside the checkout ({SCHEMA})")
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(compose)


def test_every_long_running_service_has_a_healthcheck(compose: dict):
    for name in ("web", "worker", "redis", "db", "mailpit"):
        assert "healthcheck" in compose["services"][name], name


def test_published_ports_bind_to_loopback(compose: dict):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_redis_keeps_queued_emails(compose: dict):
    command = compose["services"]["redis"]["command"]
    assert "--appendonly" in command and "noeviction" in command
