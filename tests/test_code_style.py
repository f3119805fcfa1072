"""The code stays ruff-clean and mypy-clean: CI checks it, not a reviewer's memory."""

from __future__ import annotations

import subprocess
import sys

from ingest.store.migrate import PROJECT_ROOT


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=300)


def test_ruff_finds_nothing() -> None:
    result = run("ruff", "check", "--output-format", "concise", "ingest", "rules", "migrations",
                 "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing() -> None:
    result = run("mypy", "ingest", "rules")
    assert result.returncode == 0, result.stdout + result.stderr
