"""A second ackmail process for test_concurrency: wait for "go", refresh one grant, report.

Run as ``python -m tests.auth.refresh_worker``; the JSON spec arrives in the
ACKMAIL_TEST_WORKER environment variable (never on the command line).
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

from ingest.auth import TokenProviders
from ingest.config import MailboxConfig, OAuthConfig
from ingest.config.reader import Secret

SPEC_ENV = "ACKMAIL_TEST_WORKER"


def _mailbox(spec: dict[str, str]) -> MailboxConfig:
    oauth = OAuthConfig(tenant_id=spec["tenant"], client_id=spec["client_id"],
                        authority=spec["authority"], ca_file=Path(spec["ca_file"]))
    return MailboxConfig(name=spec["name"], protocol="imap", host="127.0.0.1",
                         username=spec["username"], auth="oauth2-delegated", oauth=oauth)


def main() -> None:
    """Signal readiness, wait for the go file, then force one refresh."""
    spec = json.loads(os.environ[SPEC_ENV])
    providers = TokenProviders(Path(spec["state_dir"]), Secret(spec["cache_key"], "env"),
                               lock_timeout=30.0)
    provider = providers.for_subject(_mailbox(spec))
    Path(spec["ready_file"]).touch()
    go = Path(spec["go_file"])
    while not go.exists():
        time.sleep(0.005)
    print("refreshed" if provider.refresh_if_idle(timedelta(0)) else "skipped")


if __name__ == "__main__":
    main()
