"""``ackmail poll``, ``check`` and ``messages reprocess`` as a user runs them, on real Dovecot."""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ingest.store.db import make_engine, read_session
from ingest.store.models import Event, Message, MessageStatus, Outcome, OutcomeStatus
from tests.cli.conftest import Run
from tests.servers.dovecot import DovecotServer
from tests.sources.mail import unrelated

SECRETS = {"ACKMAIL_TOKEN_SECRET": "cli-token-secret", "ACKMAIL_CACHE_KEY": "c" * 32}


def _config(path: Path, server: DovecotServer, *, password_env: str = "BOB_PASSWORD") -> Path:
    path.write_text(f"""
[security]
token_secret = {{ env = "ACKMAIL_TOKEN_SECRET" }}
cache_key = {{ env = "ACKMAIL_CACHE_KEY" }}

[[mailbox]]
name = "approvals"
protocol = "imap"
host = "127.0.0.1"
port = {server.imaps_port}
security = "ssl"
ca_file = "{server.pki.ca_pem}"
username = "{server.users.bob.address}"
password = {{ env = "{password_env}" }}
processed_folder = "ackmail/processed"
poll_interval = 1
""")
    return path


@pytest.fixture
def env(dovecot: DovecotServer, db_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a configured installation, database upgraded."""
    password = dovecot.users.bob.password
    assert password is not None
    config = _config(tmp_path / "ackmail.toml", dovecot)
    return {"ACKMAIL_CONFIG": str(config), "ACKMAIL_DATABASE_URL": db_url,
            "BOB_PASSWORD": password.reveal(), **SECRETS}


def _statuses(db_url: str) -> dict[str, int]:
    engine = make_engine(db_url)
    try:
        with read_session(engine) as session:
            rows = session.execute(select(Message.status, func.count()).group_by(Message.status))
            return {str(status): count for status, count in rows}
    finally:
        engine.dispose()


def test_poll_once_prints_a_summary_per_mailbox(
        run: Run, env: dict[str, str], dovecot: DovecotServer, db_url: str) -> None:
    assert run("db", "upgrade", env=env).code == 0
    dovecot.deliver_many(dovecot.users.bob.address, [unrelated(), unrelated()])

    result = run("poll", "--once", env=env)

    assert result.code == 0, result.err
    assert "approvals  0 processed, 2 ignored, 0 quarantined, 0 duplicates in" in result.out
    assert _statuses(db_url) == {"ignored": 2}


def test_dry_run_prints_each_message_and_records_nothing(
        run: Run, env: dict[str, str], dovecot: DovecotServer, db_url: str) -> None:
    assert run("db", "upgrade", env=env).code == 0
    dovecot.deliver(dovecot.users.bob.address, unrelated())

    result = run("poll", "--dry-run", "--mailbox", "approvals", env=env)

    assert result.code == 0, result.err
    assert "imap:INBOX:" in result.out and "would be ignored" in result.out
    assert "dry run: nothing was recorded" in result.out
    assert _statuses(db_url) == {}
    assert dovecot.list_folder(dovecot.users.bob.address) == 1


def test_check_prints_the_steps_and_fails_on_a_wrong_password(
        run: Run, env: dict[str, str]) -> None:
    good = run("check", "approvals", env=env)
    bad = run("check", env=env | {"BOB_PASSWORD": "not-the-password"})

    assert good.code == 0 and "ok     login" in good.out
    assert bad.code == 1 and "FAILED login" in bad.out
    assert "not-the-password" not in bad.out + bad.err


def test_reprocess_runs_quarantined_messages_again(
        run: Run, env: dict[str, str], dovecot: DovecotServer, db_url: str) -> None:
    assert run("db", "upgrade", env=env).code == 0
    headers = "".join(f"X-Filler-{n}: {n}\r\n" for n in range(1200))  # over the header limit
    dovecot.deliver(dovecot.users.bob.address, headers.encode() + unrelated())
    assert run("poll", "--once", env=env).code == 0
    assert _statuses(db_url) == {"quarantined": 1}
    engine = make_engine(db_url)
    with read_session(engine) as session:
        first = session.scalars(select(Message.id)).one()
    engine.dispose()

    again = run("messages", "reprocess", "--status", "quarantined", env=env)
    missing = run("messages", "reprocess", str(first + 1000), env=env)

    assert again.code == 0, again.err
    assert f"message #{first}: now #" in again.out and "quarantined" in again.out
    assert missing.code == 1 and "there is no message" in missing.out
    assert _statuses(db_url) == {MessageStatus.QUARANTINED.value: 1}


def test_sigterm_ends_a_running_poll_cleanly(
        env: dict[str, str], dovecot: DovecotServer, db_url: str, tmp_path: Path) -> None:
    upgrade = subprocess.run([sys.executable, "-m", "ingest", "db", "upgrade"],
                             env=os.environ | env, capture_output=True, timeout=60, check=False)
    assert upgrade.returncode == 0, upgrade.stderr
    poll = subprocess.Popen([sys.executable, "-m", "ingest", "poll"], env=os.environ | env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        dovecot.deliver(dovecot.users.bob.address, unrelated())
        deadline = time.monotonic() + 20
        while _statuses(db_url) != {"ignored": 1} and time.monotonic() < deadline:
            time.sleep(0.1)
        poll.send_signal(signal.SIGTERM)
        out, err = poll.communicate(timeout=15)
    finally:
        if poll.poll() is None:
            poll.kill()
            poll.wait()

    assert poll.returncode == 0, err
    assert "approvals  0 processed, 1 ignored" in out
    assert dovecot.list_folder(dovecot.users.bob.address, "ackmail/processed") == 1


def test_poll_runs_the_rules_and_delivers_outcomes(
        run: Run, env: dict[str, str], dovecot: DovecotServer, db_url: str,
        tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text(
        '[[rule]]\nname = "stray-mail"\non = ["message.unmatched"]\n'
        '[[rule.action]]\ntype = "log"\nmessage = "no request for ${message.subject}"\n')
    config = Path(env["ACKMAIL_CONFIG"])
    config.write_text(config.read_text() + '\n[rules]\nfile = "rules.toml"\n')
    assert run("db", "upgrade", env=env).code == 0
    assert run("poll", "--once", env=env).code == 0  # watched from now: later mail is new
    time.sleep(1.1)  # INTERNALDATE has whole seconds
    dovecot.deliver(dovecot.users.bob.address, unrelated())

    assert run("poll", "--once", env=env).code == 0

    engine = make_engine(db_url)
    try:
        with read_session(engine) as session:
            assert session.scalar(select(func.count()).select_from(Event)
                                  .where(Event.processed_at.is_(None))) == 0
            outcome = session.scalars(select(Outcome)).one()
    finally:
        engine.dispose()
    assert (outcome.rule, outcome.status) == ("stray-mail", OutcomeStatus.DELIVERED)


def test_poll_once_on_a_terminal_shows_progress(
        env: dict[str, str], dovecot: DovecotServer, db_url: str, run: Run) -> None:
    assert run("db", "upgrade", env=env).code == 0
    dovecot.deliver_many(dovecot.users.bob.address, [unrelated() for _ in range(3)])
    leader, follower = os.openpty()
    # A terminal has a size (a bare pty has 0 columns, and tqdm would draw nothing).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        result = subprocess.run([sys.executable, "-m", "ingest", "poll", "--once"],
                                env={**os.environ, **env}, stdout=subprocess.PIPE,
                                stderr=follower, text=True, timeout=60)
        os.close(follower)
        terminal = _read_all(leader)
    finally:
        os.close(leader)
    assert result.returncode == 0
    assert "approvals: " in terminal and "3 msg" in terminal  # the bar, on the terminal
    assert "message ignored" not in terminal  # per-message log lines held back meanwhile
    assert "approvals  0 processed, 3 ignored" in result.stdout  # the summary, on stdout


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the terminal's other end closed: everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")
