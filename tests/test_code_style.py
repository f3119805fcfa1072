"""The code stays ruff-clean and mypy-clean: CI checks it, not a reviewer's memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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



def test_import_layering_contracts_hold() -> None:
    """The [tool.importlinter] contracts in pyproject.toml: the layering, checked."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    # grimp reads the packages from the path, not from the editable install's finder.
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run([str(lint_imports)], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=300, env=environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
