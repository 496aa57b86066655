"""Flower behind Redis Sentinel: its Broker page and queue API read the queue from the
master, in the broker's database, with the first Sentinel down and after a failover."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.request import urlopen

import pytest
from support.processes import BIN, ServiceProcess
from support.sentinel import SentinelGroup

from scripts.embedded_redis import free_port
from shared.contract import EMAIL_QUEUE

pytestmark = pytest.mark.integration


class FlowerProcess(ServiceProcess):
    """`celery flower` with the project's flowerconfig.py, on loopback."""

    ready_marker = "Visit me at"

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env)
        self.port = free_port()

    def command(self) -> list[str]:
        return [str(BIN / "celery"), "-A", "worker.celery_app:celery_app", "flower",
                "--conf=flowerconfig.py", "--address=127.0.0.1", f"--port={self.port}"]

    def queue_lengths(self) -> dict[str, int]:
        with urlopen(f"http://127.0.0.1:{self.port}/api/queues/length", timeout=10) as page:
            body = json.load(page)
        return {queue["name"]: queue["messages"] for queue in body["active_queues"]}


@pytest.fixture
def flower(sentinel_group: SentinelGroup, tmp_path: Path):
    env = {**sentinel_group.env(db=2), "APP_ENV": "development",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'flower.db'}",
           "FLOWER_UNAUTHENTICATED_API": "true"}  # loopback only, for this test
    process = FlowerProcess(env).start()
    yield process
    process.kill()


def test_flower_reads_the_queue_through_any_sentinel_and_after_a_failover(
        flower: FlowerProcess, sentinel_group: SentinelGroup):
    master = sentinel_group.master(db=2)
    master.lpush(EMAIL_QUEUE, *[f"message {n}".encode() for n in range(3)])
    assert master.wait(1, 5000) == 1
    sentinel_group.kill_sentinel(0)  # Flower's own client would ask this one alone

    assert flower.queue_lengths() == {EMAIL_QUEUE: 3}
    sentinel_group.kill_master()
    sentinel_group.wait_for_failover()
    deadline = time.monotonic() + 20
    while flower.queue_lengths() != {EMAIL_QUEUE: 3} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert flower.queue_lengths() == {EMAIL_QUEUE: 3}
