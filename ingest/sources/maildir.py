"""A local Maildir (the embedded default): read ``new/``, then file into ``cur/`` after commit.

Maildir's own protocol does the work: a delivered message is a file in ``new/``;
once its record is committed it is renamed into ``cur/`` with the Seen flag
(``:2,S``), or into the ``cur/`` of the processed folder when one is set. A crash
in between leaves the file in ``new/`` and the next run finds it recorded.
"""

from __future__ import annotations

import logging
import mailbox
import os
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from ingest.errors import UserError
from ingest.sources.base import (
    Cursor,
    FetchedBatch,
    FetchedMessage,
    Filing,
    SourceContext,
    SourceRef,
    batches_of,
)

log = logging.getLogger(__name__)
SEEN_INFO = "2,S"


class MaildirSource:
    """One Maildir directory (with an optional processed sub-folder)."""

    protocol: ClassVar[str] = "maildir"

    def __init__(self, context: SourceContext) -> None:
        self.context = context
        self.mailbox = context.mailbox
        self.options = context.options
        self._maildir: mailbox.Maildir | None = None
        self._done_dir: Path | None = None

    @property
    def folder(self) -> str:
        return "INBOX"

    @property
    def path(self) -> Path:
        if self.mailbox.path is None:
            raise UserError(f"mailbox '{self.mailbox.name}': protocol 'maildir' needs path")
        return self.mailbox.path

    def connect(self) -> None:
        """Check the directory is a Maildir; create the processed folder if it is missing."""
        path = self.path
        missing = [sub for sub in ("new", "cur", "tmp") if not (path / sub).is_dir()]
        if missing:
            raise UserError(
                f"mailbox '{self.mailbox.name}': {path} is not a Maildir (no "
                f"{', '.join(s + '/' for s in missing)}); fix path or create it with those "
                "three sub-directories"
            )
        maildir = mailbox.Maildir(path, factory=None, create=False)
        done = maildir
        name = self.mailbox.processed_folder
        if name and name in maildir.list_folders():
            done = maildir.get_folder(name)
        elif name and not self.context.read_only:
            done = maildir.add_folder(name)
        self._maildir = maildir
        self._done_dir = Path(done._path) / "cur"

    def fetch(self, cursor: Cursor) -> Iterator[FetchedBatch]:
        """Every file in ``new/``, oldest name first (names start with the delivery time)."""
        with os.scandir(self.path / "new") as entries:
            names = sorted(e.name for e in entries if e.is_file() and not e.name.startswith("."))
        for chunk in batches_of(names, self.options):
            items = (self._read(name) for name in chunk)
            yield FetchedBatch(tuple(item for item in items if item is not None), cursor)

    def _read(self, name: str) -> FetchedMessage | None:
        file = self.path / "new" / name
        try:
            raw = file.read_bytes()
            delivered = datetime.fromtimestamp(file.stat().st_mtime, UTC)
        except FileNotFoundError:  # another reader filed it away meanwhile
            return None
        key = name.split(self._colon, 1)[0]
        ref = SourceRef(mailbox=self.mailbox.name, source_key=f"maildir:{key}",
                        folder=self.folder, filename=name, received_at=delivered)
        return FetchedMessage(ref, raw)

    @property
    def _colon(self) -> str:
        return self._maildir.colon if self._maildir else ":"

    def file(self, filings: Sequence[Filing]) -> None:
        """Rename each file from ``new/`` into ``cur/`` (of the processed folder) as Seen."""
        if self._done_dir is None:
            raise RuntimeError("connect() the source first")
        for done in filings:
            name = done.ref.filename
            if not name:
                continue
            key = name.split(self._colon, 1)[0]
            try:
                os.replace(self.path / "new" / name,
                           self._done_dir / f"{key}{self._colon}{SEEN_INFO}")
            except FileNotFoundError:
                log.debug("maildir %s: %s was already filed", self.path, name)

    def wait(self, stop: threading.Event) -> None:
        """Wait the poll interval (or until stop)."""
        stop.wait(self.mailbox.poll_interval_seconds)

    def close(self) -> None:
        """Nothing to close: the Maildir is plain files."""
        self._maildir = None
