"""``ackmail auth login`` and ``auth status`` as a user runs them, against the real provider."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.auth.certs import make_certificate
from tests.auth.conftest import ALICE, APP_ID, PUBLIC_ID, SHARED
from tests.servers.idp import IdentityProvider

CACHE_KEY = "cli-test-cache-key-0123456789abcdef"


def write_config(tmp_path: Path, idp: IdentityProvider, *, name: str = "alice",
                 username: str = ALICE, auth: str = "oauth2-delegated",
                 client_id: str = PUBLIC_ID,
                 credential: str = "client_secret_expires = 2026-12-01") -> Path:
    path = tmp_path / "ackmail.toml"
    path.write_text(f"""
[database]
url = "sqlite:///ackmail.db"

[security]
cache_key = {{ env = "TEST_CLI_CACHE_KEY" }}

[[mailbox]]
name = "{name}"
protocol = "imap"
host = "127.0.0.1"
username = "{username}"
auth = "{auth}"

[mailbox.oauth]
tenant_id = "{idp.tenant}"
client_id = "{client_id}"
authority = "{idp.base_url}"
ca_file = "{idp.ca_pem}"
{credential}
""")
    return path


def ackmail(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "TEST_CLI_CACHE_KEY": CACHE_KEY, **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_device_code_login_then_status(tmp_path: Path, idp: IdentityProvider) -> None:
    idp.register_client(PUBLIC_ID)
    config = write_config(tmp_path, idp)
    before = ackmail(config, "auth", "status", "--format", "json")
    out, err = before.communicate(timeout=60)
    assert before.returncode == 0, err
    assert json.loads(out)[0]["signed_in"] is False

    login = ackmail(config, "auth", "login", "alice")
    assert login.stdout is not None
    prompt = login.stdout.readline()
    user_code = re.search(r"enter the code (\S+)", prompt, re.IGNORECASE)
    assert user_code, prompt
    idp.approve_device_code(user_code.group(1), ALICE)
    out, err = login.communicate(timeout=60)
    assert login.returncode == 0, err
    assert f"signed in as {ALICE}" in out
    assert "eyJ" not in out + err

    status = ackmail(config, "auth", "status", "--format", "json")
    out, err = status.communicate(timeout=60)
    row = json.loads(out)[0]
    assert row["signed_in"] is True and row["account"] == ALICE
    assert row["refresh_token_idle_days"] == 0.0
    assert any("client secret" in w.lower() for w in row["warnings"]), row["warnings"]
    cache = tmp_path / ".ackmail" / "tokens" / "alice.cache"
    # Every JWT starts with base64url '{"' = 'eyJ' and its header ends at a dot: none may be
    # stored in clear. The encrypted cache is base64 too, so 'eyJ' alone turns up in it by
    # chance (a 7 KB cache: about one run in 40); a dot never does.
    assert re.search(rb"eyJ[\w-]*\.", cache.read_bytes()) is None
    assert "eyJ" not in out + err + prompt


def test_login_names_an_unknown_mailbox(tmp_path: Path, idp: IdentityProvider) -> None:
    config = write_config(tmp_path, idp)
    result = ackmail(config, "auth", "login", "bob")
    _, err = result.communicate(timeout=60)
    assert result.returncode == 1
    assert "no [[mailbox]] is named 'bob' (configured: alice)" in err


def test_status_table_prints_the_remedy_whole_on_a_narrow_terminal(
    tmp_path: Path, idp: IdentityProvider
) -> None:
    config = write_config(tmp_path, idp)
    as_json = ackmail(config, "auth", "status", "--format", "json")
    warnings = json.loads(as_json.communicate(timeout=60)[0])[0]["warnings"]
    assert any("run ackmail auth login alice" in w for w in warnings), warnings

    table = ackmail(config, "auth", "status", env={"COLUMNS": "80"})
    out, err = table.communicate(timeout=60)
    assert table.returncode == 0, err
    assert max(len(line) for line in out.splitlines()) <= 80
    flat = " ".join(out.split())
    assert all(w in flat for w in warnings), (warnings, out)


def test_status_shows_the_certificate_expiry(tmp_path: Path, idp: IdentityProvider,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cert = make_certificate(tmp_path, days=12, pfx=True, passphrase="cli-pfx-pass")
    config = write_config(
        tmp_path, idp, name="shared", username=SHARED, auth="oauth2-app", client_id=APP_ID,
        credential=f'certificate = {{ file = "{cert.config.file.name}", '
                   'passphrase = { env = "TEST_PFX_PASS" } }')
    monkeypatch.setenv("TEST_PFX_PASS", "cli-pfx-pass")

    status = ackmail(config, "auth", "status", "--format", "json")
    out, err = status.communicate(timeout=60)

    assert status.returncode == 0, err
    row = json.loads(out)[0]
    assert row["certificate_expires"].startswith(cert.not_after.date().isoformat())
    assert any("client certificate expires" in w for w in row["warnings"]), row["warnings"]
    assert "cli-pfx-pass" not in out + err
