"""Two processes refreshing one mailbox's grant at once: both succeed, nothing is lost.

Refresh tokens rotate: each works once. Without the cache file lock (and the
reload under it) the second process would present the token the first one just
used up, get invalid_grant, and the mailbox would need a new sign-in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from ingest.auth import TokenProvider, TokenProviders
from ingest.config import MailboxConfig
from ingest.config.reader import Secret
from tests.auth.conftest import ALICE, cached_refresh_tokens
from tests.auth.refresh_worker import SPEC_ENV
from tests.servers.idp import IdentityProvider

REPO = Path(__file__).resolve().parents[2]
WORKERS = 2


def _start_worker(number: int, spec: dict[str, str], tmp_path: Path) -> subprocess.Popen[str]:
    ready = str(tmp_path / f"ready{number}")
    env = os.environ | {SPEC_ENV: json.dumps(spec | {"ready_file": ready})}
    return subprocess.Popen([sys.executable, "-m", "tests.auth.refresh_worker"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(paths: list[Path], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        assert time.monotonic() < deadline, "the workers did not get ready"
        time.sleep(0.01)


def test_two_processes_refresh_at_once(idp: IdentityProvider, signed_in: TokenProvider,
                                       delegated_mailbox: MailboxConfig, state_dir: Path,
                                       cache_key: Secret, tmp_path: Path) -> None:
    oauth = delegated_mailbox.oauth
    assert oauth is not None
    spec = {"tenant": oauth.tenant_id, "client_id": oauth.client_id,
            "authority": oauth.authority, "ca_file": str(oauth.ca_file),
            "name": delegated_mailbox.name, "username": ALICE, "state_dir": str(state_dir),
            "cache_key": cache_key.reveal(), "go_file": str(tmp_path / "go")}
    idp.delay = 0.4  # each refresh takes a while, so the two surely overlap
    workers = [_start_worker(n, spec, tmp_path) for n in range(WORKERS)]
    try:
        _wait_for([tmp_path / f"ready{n}" for n in range(WORKERS)], timeout=30)
        (tmp_path / "go").touch()
        outcomes = [worker.communicate(timeout=60) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()

    assert [w.returncode for w in workers] == [0] * WORKERS, [err for _, err in outcomes]
    assert [out.strip() for out, _ in outcomes] == ["refreshed"] * WORKERS
    assert len(idp.requests("refresh_token")) == WORKERS
    assert cached_refresh_tokens(state_dir, delegated_mailbox, cache_key) == \
        idp.live_refresh_tokens(ALICE)
    idp.delay = 0.0
    assert TokenProviders(state_dir, cache_key).for_subject(delegated_mailbox).refresh_if_idle(
        timedelta(0))
