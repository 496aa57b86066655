"""The shipped Prometheus alert rules are valid, and fire on the samples they are meant for.

deploy/prometheus/alerts_test.yml holds the sample series: a relay that stopped sweeping
fires and one that sweeps does not; rows due too long fire and a draining queue does not;
dead letters, a down broker or database fire.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if not Path(PROMTOOL).exists():
        pytest.skip("promtool is not installed (Debian package prometheus; "
                    "scripts/ensure_debian_packages.sh installs it)")
    return subprocess.run([PROMTOOL, *args], cwd=RULES, capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_alert_rules_are_valid():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_the_alert_rules_fire_on_stalls_and_stay_quiet_when_healthy():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
