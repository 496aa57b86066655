"""`make bench` keeps working: a tiny run of the whole harness, checked for shape, not speed.

Speed is never asserted here (the numbers depend on the machine); this only checks that
every section is measured and every rate and latency came out as a positive number.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--json", str(out),
         "--timing-json", str(out.with_name("absent.json"))],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "section" in run.stdout and "total run time" in run.stdout
    return json.loads(out.read_text())


def test_every_section_is_present(results: dict):
    assert set(results) >= {"meta", "raw", "anatomy", "web", "end_to_end", "worker",
                            "timing_parity", "targets"}
    assert results["meta"]["cores"] >= 1
    assert results["timing_parity"]["summary"] == "not measured here"


def test_raw_limits_are_positive(results: dict):
    raw = results["raw"]
    assert _positive(raw["redis_lpush"]["ops_per_s"])
    assert _positive(raw["smtp_reused"]["emails_per_s"])
    assert _positive(raw["smtp_new_connection"]["emails_per_s"])
    assert _positive(raw["celery_noop"]["tasks_per_s"])
    assert _positive(raw["celery_noop_defaults"]["tasks_per_s"])


def test_web_and_end_to_end_latencies_are_measured(results: dict):
    web = results["web"]
    for key in ("latency_smtp_instant", "latency_smtp_delay"):
        summary = web[key]
        assert summary["errors"] == 0
        assert 0 < summary["median_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
        assert summary["blocks"] == 4  # instant and slow SMTP alternate
    steps = web["load"]["steps"]
    assert steps and all(_positive(step["requests_per_s"]) for step in steps)
    e2e = results["end_to_end"]
    assert e2e["missing"] == 0 and _positive(e2e["median_ms"])


def test_every_queue_size_was_sent_and_measured(results: dict):
    queues = results["worker"]["queues"]
    assert [q["queued"] for q in queues] == sorted(q["queued"] for q in queues)
    for queue in queues:
        assert _positive(queue["emails_per_s"]) and _positive(queue["window_emails_per_s"])
        assert _positive(queue["enqueue"]["enqueue_per_s"])
        assert _positive(queue["rss_at_window_end"]["total_mib"])
        if "drain_s" in queue:
            assert queue["complete"], queue
    assert any("drain_s" in q for q in queues) and any("drain_s" not in q for q in queues)


def test_anatomy_and_targets(results: dict):
    assert all(_positive(us) for us in results["anatomy"]["median_us"].values())
    assert all(us >= 0 for us in results["anatomy"]["median_cpu_us"].values())
    assert _positive(results["anatomy"]["in_process_emails_per_s"])
    assert len(results["targets"]) == 8
    events_on = results["worker"]["events_on"]
    assert events_on["complete"] and _positive(events_on["emails_per_s"])
    assert all(isinstance(t["met"], bool) for t in results["targets"])
