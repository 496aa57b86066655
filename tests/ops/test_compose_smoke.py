"""docker-compose.yml, run as local processes: every healthcheck passes and a reset gets through.

The commands, environment and healthchecks come from the compose file itself (see
support/compose_stack.py), so the file and what this test runs cannot drift apart.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text
from support.compose_stack import (
    LocalCompose,
    LocalStack,
    Operator,
    load_compose,
    long_running_services,
)
from support.http_client import HttpClient
from support.mailbox import SmtpServer

pytestmark = pytest.mark.integration

PASSWORD = "first passphrase"


def delivery_ids(database_url: str, email: str) -> list[tuple[str, str]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, status FROM email_delivery WHERE email = :email "
                     "ORDER BY created_at"), {"email": email})
            return [(row.id, row.status) for row in rows]
    finally:
        engine.dispose()


def wait_for_log(stack: LocalStack, service: str, needle: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = stack.processes[service].log
        if needle in log:
            return log
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in the {service} log:\n{log[-3000:]}")


def register(site: HttpClient, username: str, email: str) -> None:
    response = site.submit("/register", {"username": username, "email": email,
                                         "password": PASSWORD, "password2": PASSWORD})
    assert response.status == 302, response.text[:2000]


def request_reset(site: HttpClient, email: str) -> None:
    response = site.submit("/reset_password_request", {"email": email})
    assert response.status == 302, response.text[:2000]


@pytest.mark.parametrize("service", long_running_services(load_compose()))
def test_each_service_passes_its_own_healthcheck(stack: LocalStack, service: str):
    result = stack.run_healthcheck(service)
    assert result.returncode == 0, result.stdout + result.stderr


def test_celery_healthchecks_ping_their_own_node_only(stack: LocalStack,
                                                      local_compose: LocalCompose):
    """With another container's hostname each check fails: it is not 'any node answers'."""
    nodes = {"worker": "celery"}

    def check_elsewhere(service: str) -> subprocess.CompletedProcess[str]:
        env = {**local_compose.environment(service), "HOSTNAME": "some-other-container"}
        return stack.run_healthcheck(service, env=env)

    with ThreadPoolExecutor() as pool:  # each waits out its --timeout: run them together
        results = dict(zip(nodes, pool.map(check_elsewhere, nodes), strict=True))
    for service, result in results.items():
        assert result.returncode != 0, (service, result.stdout)
        assert f"{nodes[service]}@{local_compose.hostname}" not in result.stdout


def test_a_reset_goes_from_the_web_form_to_the_smtp_server(
        stack: LocalStack, local_compose: LocalCompose, site: HttpClient, smtp: SmtpServer):
    email = "compose-susan@example.com"
    register(site, "composesusan", email)
    already = len(smtp.mailbox.received)

    request_reset(site, email)

    [received] = smtp.mailbox.wait_for(already + 1)[already:]
    assert received.envelope_to == [email]
    assert received.message["Subject"] == "[Microblog] Reset Your Password"
    # The worker records `sent` just after the SMTP server accepted the message.
    deadline = time.monotonic() + 10
    while (rows := delivery_ids(local_compose.stand_ins.database_url, email))[0][1] != "sent":
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)
    [(delivery_id, _)] = rows

    # One structured line per delivery event, from both tiers, with the delivery id.
    web_log = wait_for_log(stack, "web", f"event=reset.requested delivery={delivery_id}")
    worker_log = wait_for_log(stack, "worker", f"event=delivery.sent delivery={delivery_id}")

    # Following the link: the access log shows the path with the token cut out.
    token = received.reset_link.rsplit("/", 1)[1]
    page = site.get(f"/reset_password/{token}")
    assert page.status == 302 and page.headers["Location"] == "/reset_password"
    assert site.get("/reset_password").status == 200
    web_log = wait_for_log(stack, "web", '"GET /reset_password/[redacted] HTTP/1.1" 302')
    for log in (web_log, worker_log, stack.processes["flower"].log):
        assert email not in log
        assert token not in log


def test_web_metrics_show_the_outbox_to_the_token_holder(
        stack: LocalStack, operator: Operator, site: HttpClient):
    assert site.get("/metrics").status == 401
    response = site.get("/metrics",
                        headers={"Authorization": f"Bearer {operator.metrics_token}"})
    assert response.status == 200
    assert "microblog_email_queue_length" in response.text
    assert 'microblog_email_deliveries{status="sent"}' in response.text
    assert "microblog_broker_up 1.0" in response.text
    assert "microblog_database_up 1.0" in response.text
