"""Maildir (the embedded default): new/ -> cur/ after commit, received_at from delivery."""

from __future__ import annotations

import mailbox
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Engine, select

from ingest.config import MailboxConfig
from ingest.sources.base import Filing
from ingest.sources.connect import ConnectionLost
from ingest.sources.maildir import MaildirSource
from ingest.sources.registry import SOURCES
from ingest.store.db import read_session
from ingest.store.models import Message, Request, RequestStatus
from tests.sources.conftest import PollerFactory, poll_once
from tests.sources.mail import message_count, reply, request_for, unrelated


def _maildir(path: Path, *messages: bytes) -> None:
    maildir = mailbox.Maildir(path, create=True)
    for raw in messages:
        maildir.add(raw)


def _box(path: Path, **overrides: Any) -> MailboxConfig:
    return MailboxConfig(name="local", protocol="maildir", path=path, **overrides)


def _files(path: Path, sub: str) -> list[str]:
    return sorted(os.listdir(path / sub))


def test_messages_move_from_new_to_cur_as_seen_after_commit(
        tmp_path: Path, engine: Engine, make_poller: PollerFactory) -> None:
    request = request_for(engine)
    path = tmp_path / "Maildir"
    _maildir(path, reply(request.recipients[0].token), unrelated())
    delivered = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    for name in _files(path, "new"):
        os.utime(path / "new" / name, (delivered.timestamp(), delivered.timestamp()))

    summary = poll_once(make_poller, engine, _box(path))

    assert (summary.mailboxes[0].processed, summary.mailboxes[0].ignored) == (1, 1)
    assert _files(path, "new") == []
    assert len(_files(path, "cur")) == 2
    assert all(name.endswith(":2,S") for name in _files(path, "cur"))
    with read_session(engine) as session:
        rows = session.scalars(select(Message)).all()
        assert {row.received_at for row in rows} == {delivered}
        assert all(row.filename and row.source_key == f"maildir:{row.filename}"
                   for row in rows)
        assert session.get_one(Request, request.id).status == RequestStatus.APPROVED


def test_a_processed_folder_receives_the_messages(
        tmp_path: Path, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    path = tmp_path / "Maildir"
    _maildir(path, unrelated(), unrelated())

    poll_once(make_poller, sqlite_engine, _box(path, processed_folder="done"))

    assert (_files(path, "new"), _files(path, "cur")) == ([], [])
    assert len(_files(path / ".done", "cur")) == 2


class _RenameFailsOnce(MaildirSource):
    """The rename into cur/ fails once, after the records are committed."""

    failed: ClassVar[bool] = False

    def file(self, filings: Sequence[Filing]) -> None:
        if not _RenameFailsOnce.failed:
            _RenameFailsOnce.failed = True
            raise ConnectionLost("simulated: a crash before the rename")
        super().file(filings)


def test_a_crash_before_the_rename_records_nothing_twice(
        tmp_path: Path, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    path = tmp_path / "Maildir"
    _maildir(path, unrelated(), unrelated(), unrelated())
    _RenameFailsOnce.failed = False

    summary = poll_once(make_poller, sqlite_engine, _box(path),
                        registry={**SOURCES, "maildir": _RenameFailsOnce})

    assert (summary.mailboxes[0].ignored, summary.mailboxes[0].duplicates) == (3, 3)
    assert (len(_files(path, "cur")), message_count(sqlite_engine)) == (3, 3)


def test_a_directory_that_is_not_a_maildir_fails_with_the_fix(
        tmp_path: Path, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    (tmp_path / "empty").mkdir()

    summary = poll_once(make_poller, sqlite_engine, _box(tmp_path / "empty"))

    error = summary.mailboxes[0].error or ""
    assert summary.failed and "is not a Maildir" in error and "fix path" in error
