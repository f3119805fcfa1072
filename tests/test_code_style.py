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


def test_modules_stay_small_and_ingest_shows_its_hops_as_packages() -> None:
    """No module over 350 lines; ingest/ keeps at most 10 modules beside its packages."""
    root = Path(PROJECT_ROOT)
    long = [f"{path.relative_to(root)}: {lines} lines"
            for package in ("ingest", "rules") for path in sorted((root / package).rglob("*.py"))
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 350]
    assert not long, "split these modules: " + ", ".join(long)
    top = sorted(path.name for path in (root / "ingest").glob("*.py"))
    assert len(top) <= 10, f"ingest/ has {len(top)} top-level modules: {', '.join(top)}"
