"""Flower, as compose runs it, against the running worker: what an operator sees, and who may.

Flower 2.2 serves /metrics without authentication (its docs list it as exempt, with
/healthcheck); flowerconfig.py puts it behind the same basic auth as everything else.
"""

from __future__ import annotations

import ast
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.compose_stack import ROOT, LocalCompose, LocalStack
from support.http_client import HttpClient
from support.mailbox import SmtpServer

from scripts.embedded_redis import free_port

pytestmark = pytest.mark.integration

TASK = "email.send_password_reset"
PASSWORD = "first passphrase"


def eventually(probe: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what or probe}")


def reset_for(site: HttpClient, username: str) -> str:
    """Register an account and request a reset for it; return its address."""
    email = f"{username}@example.com"
    for path, data in (("/register", {"username": username, "email": email,
                                      "password": PASSWORD, "password2": PASSWORD}),
                       ("/reset_password_request", {"email": email})):
        response = site.submit(path, data)
        assert response.status == 302, response.text[:2000]
    return email


def flower_tasks(flower: HttpClient) -> dict[str, dict[str, Any]]:
    response = flower.get(f"/api/tasks?taskname={TASK}")
    assert response.status == 200, response.text
    return json.loads(response.body)


def task_for(flower: HttpClient, state: str, exclude: set[str] = frozenset()
             ) -> Callable[[], tuple[str, dict[str, Any]] | None]:
    def probe() -> tuple[str, dict[str, Any]] | None:
        for task_id, task in flower_tasks(flower).items():
            if task_id not in exclude and task["state"] == state:
                return task_id, task
        return None
    return probe


def counters(flower: HttpClient) -> dict[tuple[str, str], float]:
    """flower_events_total by (event type, task name), summed over workers."""
    response = flower.get("/metrics")
    assert response.status == 200, response.text[:500]
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "flower_events_total":
                key = (sample.labels["type"], sample.labels["task"])
                found[key] = found.get(key, 0) + sample.value
    return found


@pytest.mark.parametrize("path", ["/", "/workers", "/tasks", "/api/workers", "/api/tasks",
                                  "/metrics"])
def test_nothing_but_the_healthcheck_answers_without_credentials(stack: LocalStack, path: str):
    anonymous = HttpClient(stack.url("flower", 5555))
    response = anonymous.get(path)
    assert response.status == 401
    assert "flower_events_total" not in response.text
    wrong = HttpClient(stack.url("flower", 5555), basic_auth=("operator", "guess"))
    assert wrong.get(path).status == 401


def test_the_healthcheck_is_open_and_says_only_ok(stack: LocalStack):
    response = HttpClient(stack.url("flower", 5555)).get("/healthcheck")
    assert (response.status, response.text) == (200, "OK")


def test_the_api_lists_the_worker(flower: HttpClient, local_compose: LocalCompose):
    node = f"celery@{local_compose.hostname}"

    def listed() -> bool:
        # Flower inspects with a 1 s timeout: a busy machine can miss one round.
        response = flower.get("/api/workers?refresh=1")
        assert response.status == 200, response.text
        return node in json.loads(response.body)

    eventually(listed, what=f"{node} in /api/workers")
    # And online by its own events (heartbeats), not only by answering inspect.
    eventually(lambda: json.loads(flower.get("/api/workers?status=1").body).get(node) is True,
               what=f"{node} online in Flower's event state")


def test_the_broker_view_counts_the_email_queue(flower: HttpClient):
    """Flower picks its broker client by the scheme of the broker URL as kombu spells it."""
    response = flower.get("/api/queues/length")
    assert response.status == 200, response.text[:500]
    queues = {queue["name"] for queue in json.loads(response.body)["active_queues"]}
    assert "email" in queues
    assert flower.get("/broker").status == 200


def test_a_reset_task_shows_its_name_and_only_the_delivery_id(
        flower: HttpClient, site: HttpClient, smtp: SmtpServer):
    before = set(flower_tasks(flower))
    email = reset_for(site, "flowersusan")

    task_id, task = eventually(task_for(flower, "SUCCESS", exclude=before),
                               what="the reset task to succeed in Flower")

    assert task["name"] == TASK
    assert task["args"] == "()"
    delivery_id = ast.literal_eval(task["kwargs"])["delivery_id"]
    assert task["kwargs"] == repr({"delivery_id": delivery_id})
    assert len(delivery_id) == 32
    detail = flower.get(f"/api/task/info/{task_id}")
    assert detail.status == 200
    assert email not in detail.text and email not in json.dumps(task)
    assert smtp.mailbox.to(email)


def test_metrics_count_each_state_from_both_tiers_including_retries(
        flower: HttpClient, site: HttpClient, smtp: SmtpServer):
    before = counters(flower)
    smtp.mailbox.reply = "451 4.3.0 Try again later"  # the first attempt is refused
    try:
        email = reset_for(site, "retrysusan")
        eventually(lambda: counters(flower).get(("task-retried", TASK), 0)
                   > before.get(("task-retried", TASK), 0), what="a task-retried event")
    finally:
        smtp.mailbox.reply = "250 OK"
    eventually(lambda: smtp.mailbox.to(email), what="the email after the retry")

    def all_counted() -> dict[tuple[str, str], float] | None:
        now = counters(flower)
        grew = {kind for kind in ("task-sent", "task-received", "task-started",
                                  "task-succeeded", "task-retried")
                if now.get((kind, TASK), 0) > before.get((kind, TASK), 0)}
        return now if len(grew) == 5 else None

    # task-sent comes from the web tier, the rest from the worker.
    eventually(all_counted, what=f"sent, received, started, succeeded and retried events; "
               f"before {before}, now {counters(flower)}")


def test_flower_keeps_its_state_on_its_volume_across_a_restart(
        stack: LocalStack, local_compose: LocalCompose, flower: HttpClient, site: HttpClient):
    reset_for(site, "persistsusan")
    task_id, _ = eventually(task_for(flower, "SUCCESS"), what="a task in Flower")
    volume = Path(local_compose.volumes("flower")["/var/lib/microblog/flower"])

    stack.restart("flower")
    assert any(volume.iterdir()), "Flower saved nothing on its volume"
    stack.wait_healthy("flower")

    assert task_id in flower_tasks(flower)


def test_flower_refuses_to_start_without_credentials(stack: LocalStack,
                                                     local_compose: LocalCompose):
    """.env.example leaves FLOWER_BASIC_AUTH empty: an operator who forgets gets no Flower."""
    env = {**local_compose.environment("flower"), "FLOWER_BASIC_AUTH": ""}
    command = local_compose.command("flower")
    command = [arg for arg in command if not arg.startswith("--port=")]
    command.append(f"--port={free_port()}")  # if it did start, it would not be on the stack's
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stdout + result.stderr
    env.pop("FLOWER_BASIC_AUTH")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode != 0
    assert "refuses to start without authentication" in result.stdout + result.stderr
