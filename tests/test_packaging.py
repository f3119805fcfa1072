"""The wheel, installed into a fresh virtualenv outside the checkout, runs as a user runs it.

The wheel must carry everything ackmail reads at run time (migrations, templates,
vocabularies): the commands run from a temporary directory, with a Python that
cannot see the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**_clean_env(), **(env or {})},
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def _clean_env() -> dict[str, str]:
    hidden = {"PYTHONPATH", "ACKMAIL_CONFIG", "ACKMAIL_DATABASE_URL", "VIRTUAL_ENV"}
    return {name: value for name, value in os.environ.items() if name not in hidden}


def _installed(tmp_path: Path) -> Path:
    """A new virtualenv under ``tmp_path`` with the freshly built wheel; returns its bin/."""
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, CHECKOUT,
         cwd=tmp_path)
    wheel = next(dist.glob("ackmail-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    _run(bin_dir / "python", "-m", "pip", "install", "-q", f"{wheel}[postgres]", cwd=tmp_path)
    return bin_dir


def test_the_installed_wheel_inits_upgrades_and_polls(tmp_path: Path, pg_database_url: str) -> None:
    bin_dir = _installed(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    where = _run(bin_dir / "python", "-c", "import ingest; print(ingest.__file__)", cwd=work)
    assert Path(where.strip()).is_relative_to(tmp_path / "venv"), where
    ackmail = bin_dir / "ackmail"
    assert _run(ackmail, "--version", cwd=work).startswith("ackmail ")

    assert "at revision" in _run(ackmail, "init", cwd=work)
    assert (work / "ackmail.toml").is_file()
    _run(ackmail, "db", "upgrade", cwd=work)
    _run(ackmail, "db", "upgrade", cwd=work, env={"ACKMAIL_DATABASE_URL": pg_database_url})
    assert _run(ackmail, "requests", "list", "--format", "json", cwd=work,
                        env={"ACKMAIL_DATABASE_URL": pg_database_url}).strip() == "[]"

    demo = _run(ackmail, "demo", "--dir", work / "demo", cwd=work)
    assert "poll --once:     demo  5 processed" in demo
    config = work / "demo" / "ackmail.toml"
    _run(ackmail, "--config", config, "poll", "--once", cwd=work)
    listed = _run(ackmail, "--config", config, "requests", "list", "--format", "json", cwd=work)
    assert '"CR-1001"' in listed and '"approved"' in listed, listed
