"""The command line end to end: init, db, the query commands, and how bad input ends."""

from __future__ import annotations

import csv
import io
import json
import stat
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from ingest.store.db import make_engine, transaction
from ingest.store.migrate import head_revision
from ingest.store.models import RequestStatus
from tests.cli.conftest import Run
from tests.factories import add_message, add_request, add_response


def test_help_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ingest", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("init", "db", "requests", "acks", "messages", "stats"):
        assert command in result.stdout


def test_init_writes_config_keys_and_database(run: Run, tmp_path: Path) -> None:
    first = run("init")
    assert first.code == 0, first.err
    assert (tmp_path / "ackmail.toml").exists()
    for key in ("token_secret", "cache_key"):
        mode = (tmp_path / ".ackmail" / key).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600
    assert f"at revision {head_revision()}" in first.out
    assert first.out.splitlines()[-1].startswith("next: add your mailbox to ")
    assert "then run 'ackmail check' to test it" in first.out
    assert run("rules", "check").code == 0  # the default rules file init wrote is valid
    (tmp_path / "ackmail.toml").write_text((tmp_path / "ackmail.toml").read_text() + "# mine\n")
    second = run("init")
    assert second.code == 0
    assert "exists, left as it is" in second.out
    assert (tmp_path / "ackmail.toml").read_text().endswith("# mine\n")


def test_query_commands_read_real_rows(run: Run, db_url: str) -> None:
    env = {"ACKMAIL_DATABASE_URL": db_url}
    assert run("db", "upgrade", env=env).code == 0
    engine = make_engine(db_url)
    with transaction(engine) as session:
        request = add_request(
            session,
            ref="CR-20631",
            status=RequestStatus.APPROVED,
            responders=("alice@example.test",),
        )
        add_response(session, request)
        add_message(session, reason="auto-reply")
    engine.dispose()

    rows = json.loads(run("requests", "list", "--format", "json", env=env).out)
    assert [(r["ref"], r["status"], r["policy"]) for r in rows] == [("CR-20631", "approved", "any")]
    assert {"id", "kind", "created_at", "decided_at"} <= rows[0].keys()
    assert rows[0]["created_at"].endswith("Z")

    acks = list(
        csv.DictReader(
            io.StringIO(run("acks", "list", "--since", "24h", "--format", "csv", env=env).out)
        )
    )
    assert [(a["ref"], a["intent"], a["address"]) for a in acks] == [
        ("CR-20631", "approve", "alice@example.test")
    ]

    table = run("messages", "list", env=env).out
    assert "auto-reply" in table and "source_key" in table
    stats = json.loads(run("stats", "--format", "json", env=env).out)
    assert stats["requests"] == {"approved": 1}
    assert "revision" in run("db", "current", env=env).out


def test_bad_config_is_one_sentence_and_writes_nothing(run: Run, tmp_path: Path) -> None:
    (tmp_path / "ackmail.toml").write_text("[database]\nurl = 'sqlite:///acks.db'\nurll = 1\n")
    result = run("requests", "list")
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert "key 'urll' is not a known setting (did you mean 'url'?)" in result.err
    assert not (tmp_path / "acks.db").exists()


def test_missing_secret_env_names_the_variable(run: Run, tmp_path: Path) -> None:
    (tmp_path / "ackmail.toml").write_text(
        "[security]\ntoken_secret = { env = 'ACKMAIL_TEST_NOT_SET' }\n"
    )
    result = run("db", "upgrade")
    assert result.code == 1
    assert "environment variable ACKMAIL_TEST_NOT_SET, which is not set" in result.err
    assert not (tmp_path / "ackmail.db").exists()


def test_unreachable_database_is_explained(run: Run) -> None:
    result = run(
        "requests",
        "list",
        env={"ACKMAIL_DATABASE_URL": "postgresql+psycopg://ops:hunter2@127.0.0.1:1/acks"},
    )
    assert result.code == 1
    assert (
        "cannot connect to the database postgresql+psycopg://ops:***@127.0.0.1:1/acks" in result.err
    )
    assert "hunter2" not in result.err


def test_missing_sqlite_file_is_not_created_by_a_query(run: Run, tmp_path: Path) -> None:
    result = run("acks", "list")
    assert result.code == 1
    assert "does not exist; run 'ackmail init'" in result.err
    assert not (tmp_path / "ackmail.db").exists()


def test_database_at_another_revision_is_refused(run: Run, db_url: str) -> None:
    env = {"ACKMAIL_DATABASE_URL": db_url}
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE unrelated (id INTEGER)"))
    older = run("requests", "list", env=env)
    assert older.code == 1 and "no ackmail tables yet; run 'ackmail db upgrade'" in older.err
    assert run("db", "upgrade", env=env).code == 0
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    engine.dispose()
    newer = run("requests", "list", env=env)
    assert newer.code == 1
    assert "revision f00dfeed, which this ackmail does not know" in newer.err


def test_bad_usage_exits_2(run: Run) -> None:
    assert run("requests", "list", "--format", "xml").code == 2
    assert run("acks", "list", "--since", "yesterday-ish").code == 2
    assert run("frobnicate").code == 2


def test_list_tables_fit_a_narrow_terminal_with_the_reason_whole(run: Run, db_url: str) -> None:
    env = {"ACKMAIL_DATABASE_URL": db_url, "COLUMNS": "100"}
    assert run("db", "upgrade", env=env).code == 0
    why = ("automatic reply (Auto-Submitted: auto-replied) from a mailbox that answers every "
           "message, so it neither approves nor rejects anything")
    engine = make_engine(db_url)
    with transaction(engine) as session:
        add_message(session, reason=why)
    engine.dispose()

    table = run("messages", "list", env=env).out
    assert max(len(line) for line in table.splitlines()) <= 100
    assert why in " ".join(table.split())
    assert "…" not in table
    assert json.loads(run("messages", "list", "--format", "json", env=env).out)[0]["reason"] == why
