"""The tiers never import each other, and shared/ imports neither (import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_migrations_match_the_models(tmp_path: Path):
    env = {"APP_ENV": "development", "DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
           "PATH": str(Path(sys.executable).parent)}
    flask = str(Path(sys.executable).parent / "flask")
    for command in (["db", "upgrade"], ["db", "check"]):
        result = subprocess.run([flask, "--app", "web.wsgi", *command], cwd=ROOT, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
