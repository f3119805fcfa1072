"""/healthz: a stuck IDLE is told from a quiet mailbox; 200 when healthy, 503 otherwise."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update

from ingest.config import Settings
from ingest.store.db import make_engine, transaction
from ingest.store.models import Checkpoint
from ingest.timeutil import utcnow
from ingest.web.health import FolderState, HealthPolicy, check_health
from tests.web.conftest import ServerFactory, add_checkpoint, imap_mailbox

POLICY = HealthPolicy()


def ago(delta: timedelta) -> str:
    return (utcnow() - delta).isoformat()


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


@pytest.mark.parametrize(
    ("success_ago", "state", "expected"),
    [
        (timedelta(seconds=30), {}, FolderState.POLLING),
        (timedelta(minutes=10), {}, FolderState.STALE),
        (None, {}, FolderState.NEVER),
        # IDLE: the heartbeat decides, not the last mail.
        (timedelta(seconds=30), {"idle": True, "heartbeat_at": ago(timedelta(minutes=1))},
         FolderState.IDLE),
        (timedelta(hours=9), {"idle": True, "heartbeat_at": ago(timedelta(minutes=20))},
         FolderState.QUIET),
        (timedelta(seconds=30), {"idle": True, "heartbeat_at": ago(timedelta(minutes=61))},
         FolderState.STUCK),
        (timedelta(seconds=30), {"idle": True}, FolderState.STUCK),
        (timedelta(seconds=30), {"idle": True, "heartbeat_at": "yesterday"}, FolderState.STUCK),
    ],
)
def test_folder_states(engine: Engine, settings: Settings, success_ago: timedelta | None,
                       state: dict[str, Any], expected: FolderState) -> None:
    add_checkpoint(engine, "approvals", success_ago=success_ago, reconnects=4, **state)

    report = check_health(settings, engine)

    (folder,) = report.folders
    assert folder.state == expected
    assert report.healthy == (expected in {FolderState.POLLING, FolderState.IDLE,
                                           FolderState.QUIET})
    assert folder.reconnects == 4


@pytest.mark.parametrize(
    ("success_ago", "attempt_ago", "state", "note"),
    [
        (timedelta(seconds=30), None, {}, ""),
        (timedelta(hours=2), None, {}, "no poller is running: nothing has tried this folder since"),
        (timedelta(hours=2), timedelta(seconds=20), {}, "the poller runs, but its polls fail"),
        (None, None, {}, "no poller has read this folder yet: start ackmail poll"),
        (None, timedelta(seconds=20), {}, "the poller runs, but its polls fail"),
        # IDLE renewals are a sign of life too; an old heartbeat and no attempt: none runs.
        (timedelta(hours=2), None, {"idle": True, "heartbeat_at": ago(timedelta(minutes=1))}, ""),
        (timedelta(hours=2), None, {"idle": True, "heartbeat_at": ago(timedelta(hours=1))},
         "no poller is running"),
        (timedelta(hours=2), timedelta(seconds=5),
         {"idle": True, "heartbeat_at": ago(timedelta(hours=1))},
         "the poller runs, but its IDLE connection is silent"),
    ],
)
def test_an_unhealthy_folder_says_whether_a_poller_runs(
    engine: Engine, settings: Settings, success_ago: timedelta | None,
    attempt_ago: timedelta | None, state: dict[str, Any], note: str
) -> None:
    add_checkpoint(engine, "approvals", success_ago=success_ago, attempt_ago=attempt_ago, **state)

    (folder,) = check_health(settings, engine).folders

    assert folder.note.startswith(note) and bool(folder.note) == bool(note)
    if note.startswith("no poller is running"):
        assert folder.note.endswith("; start ackmail poll")


def test_a_configured_mailbox_without_a_checkpoint_has_no_poller(engine: Engine,
                                                                settings: Settings) -> None:
    (folder,) = check_health(settings, engine).folders
    assert (folder.state, folder.note) == (
        FolderState.NEVER, "no poller has read this folder yet: start ackmail poll")


def test_stuck_means_two_idle_renewals_missed() -> None:
    assert POLICY.idle_stuck_after == timedelta(minutes=50)
    assert POLICY.poll_stale_after(60) == timedelta(minutes=4)


def test_a_configured_mailbox_never_polled_is_unhealthy(engine: Engine,
                                                        settings: Settings) -> None:
    two = replace(settings, mailboxes=(imap_mailbox(), imap_mailbox("alerts", folder="Alerts")))
    add_checkpoint(engine, "approvals", success_ago=timedelta(seconds=5))

    report = check_health(two, engine)

    states = {(f.mailbox, f.folder): f.state for f in report.folders}
    assert states == {("approvals", "INBOX"): FolderState.POLLING,
                      ("alerts", "Alerts"): FolderState.NEVER}
    assert not report.healthy


def test_a_mailbox_no_longer_configured_does_not_count(engine: Engine,
                                                       settings: Settings) -> None:
    add_checkpoint(engine, "approvals", success_ago=timedelta(seconds=5))
    add_checkpoint(engine, "retired", success_ago=timedelta(days=30))

    report = check_health(settings, engine)

    retired = next(f for f in report.folders if f.mailbox == "retired")
    assert (retired.configured, retired.state) == (False, FolderState.STALE)
    assert report.healthy


def test_healthz_answers_200_then_503_with_the_reasons(engine: Engine, server: ServerFactory,
                                                       settings: Settings) -> None:
    add_checkpoint(engine, "approvals", success_ago=timedelta(hours=3), idle=True,
                   heartbeat_at=ago(timedelta(minutes=5)), reconnects=2)
    with server() as url:
        status, body = get_json(f"{url}/healthz")
    assert status == 200 and body["status"] == "ok"
    assert body["database"] == {"reachable": True}
    (box,) = body["mailboxes"]
    assert (box["mode"], box["state"], box["reconnects"]) == ("idle", "quiet", 2)
    assert 10_700 <= box["last_success_age_seconds"] <= 10_900
    assert 290 <= box["heartbeat_age_seconds"] <= 320

    stuck = replace(settings, mailboxes=(imap_mailbox(), imap_mailbox("alerts")))
    with server(config=stuck) as url:
        status, body = get_json(f"{url}/healthz")
    assert status == 503 and body["status"] == "unhealthy"
    assert [b["state"] for b in body["mailboxes"]] == ["quiet", "never"]


def test_healthz_is_503_when_the_database_is_down(tmp_path: Path, settings: Settings) -> None:
    # A directory is not a database file: every connection attempt fails.
    down = make_engine(f"sqlite:///{tmp_path}")
    try:
        report = check_health(settings, down)
    finally:
        down.dispose()
    assert not report.healthy
    assert report.as_json()["database"] == {"reachable": False}
    assert report.as_json()["status"] == "unhealthy"


def test_healthz_shows_no_error_text(engine: Engine, server: ServerFactory) -> None:
    add_checkpoint(engine, "approvals", success_ago=timedelta(seconds=5))
    with transaction(engine) as session:
        session.execute(update(Checkpoint).values(
            last_error="login failed for approvals@corp.internal"))
    with server() as url:
        _, body = get_json(f"{url}/healthz")
    assert "corp.internal" not in json.dumps(body)
