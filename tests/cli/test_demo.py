"""``ackmail demo``: the whole pipeline on SQLite and a Maildir, as a newcomer runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def ackmail(*args: str) -> subprocess.CompletedProcess[str]:
    # The reasons wrap at this width, but only they (the last column), so they read whole below.
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "ingest", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_demo_decides_ignores_and_calls_the_webhook(tmp_path: Path) -> None:
    result = ackmail("demo", "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "poll --once:     demo  5 processed, 3 ignored, 0 quarantined" in out
    assert out.count("signature ok") == 4 and "BAD SIGNATURE" not in out
    for reason in ("matches no request", "delivery failure report (bounce)",
                   "automatic reply (Auto-Submitted: auto-replied)",
                   "a forwarded request cannot be decided"):
        assert reason in " ".join(out.split())

    config = str(tmp_path / "ackmail.toml")
    listed = ackmail("--config", config, "requests", "list", "--format", "json")
    statuses = {row["ref"]: row["status"] for row in json.loads(listed.stdout)}
    assert statuses == {"CR-1001": "approved", "CR-1002": "rejected", "INC-2001": "acknowledged",
                        "CR-1003": "approved", "CR-1004": "pending"}
    outcomes = ackmail("--config", config, "outcomes", "list", "--format", "json")
    assert {row["status"] for row in json.loads(outcomes.stdout)} == {"delivered"}
