"""How the smoke test turns compose services into local processes, and what it refuses."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from support.compose_stack import (
    ComposeDrift,
    LocalCompose,
    StandIns,
    load_compose,
    seconds,
    unescape,
)

STAND_INS = StandIns(database_url="sqlite:////tmp/x.db", redis_url="redis://127.0.0.1:7001/3",
                     smtp_port=7002)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".env").write_text("APP_ENV=production\nMAIL_PORT=8025\n")
    return tmp_path


def local(compose: dict, project: Path) -> LocalCompose:
    return LocalCompose(compose, STAND_INS, project, volume_root=project / "volumes")


def test_hosts_ports_volumes_and_image_paths_are_mapped(project: Path):
    translated = local(load_compose(), project)
    env = translated.environment("worker")
    assert env["REDIS_URL"] == STAND_INS.redis_url
    assert env["DATABASE_URL"] == STAND_INS.database_url
    assert (env["MAIL_SERVER"], env["MAIL_PORT"]) == ("127.0.0.1", "7002")
    assert env["PYTHONPATH"] == str(Path(__file__).resolve().parents[2])
    web = translated.command("web")
    assert f"127.0.0.1:{translated.local_port('web', 8000)}" in web
    flower = " ".join(translated.command("flower"))
    assert "/var/lib/microblog" not in flower and str(project / "volumes") in flower
    argv, timeout = translated.healthcheck("worker")
    assert argv[:2] == ["sh", "-c"] and "celery@$HOSTNAME" in argv[2] and timeout == 15


def test_a_new_backing_service_is_drift(project: Path):
    compose = copy.deepcopy(load_compose())
    compose["services"]["memcached"] = {"image": "memcached:1"}
    with pytest.raises(ComposeDrift, match="memcached"):
        local(compose, project)


def test_a_url_to_a_service_nobody_stands_in_for_is_drift(project: Path):
    compose = copy.deepcopy(load_compose())
    compose["services"]["worker"]["environment"]["CACHE_URL"] = "http://flower:5555/"
    with pytest.raises(ComposeDrift, match="flower"):
        local(compose, project).environment("worker")


def test_interpolation_other_than_a_literal_dollar_is_refused():
    assert unescape("celery@$$HOSTNAME") == "celery@$HOSTNAME"
    with pytest.raises(ComposeDrift):
        unescape("${FLOWER_BASIC_AUTH}")


def test_compose_durations():
    assert seconds("45s") == 45 and seconds("1m30s") == 90 and seconds("500ms") == 0.5
    with pytest.raises(ValueError):
        seconds("soon")
