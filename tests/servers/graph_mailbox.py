"""The mailboxes the Graph-shaped test server serves: folders, messages kept as files, delta.

Each mailbox lives under a directory (one ``.eml`` file per message); the folder tree,
ids and change tracking are held in memory. Every change (a delivery, a move out of
a folder) takes the next number of the mailbox's sequence, and a delta round hands
out the changes of a folder past a watermark, in order. So a ``@odata.nextLink`` or
``@odata.deltaLink`` is just (folder, generation, watermark); invalidating a
folder's tokens bumps its generation, and an older token then answers 410 as Graph
does when its delta token cache dropped one.

Ids are as Graph hands them out: a message's REST id changes when it moves; its
immutable id (``Prefer: IdType="ImmutableId"``) does not.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

# Graph's well-known folder names, and their display names in an English mailbox.
WELL_KNOWN = {"inbox": "Inbox", "drafts": "Drafts", "sentitems": "Sent Items",
              "deleteditems": "Deleted Items", "archive": "Archive", "junkemail": "Junk Email"}
ROOT = "msgfolderroot"


class GraphFault(Exception):
    """A Graph error answer: status, error code and message."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def not_found() -> GraphFault:
    return GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def _new_id(prefix: str = "AAMkAGI2") -> str:
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(24)).decode()


@dataclass
class StoredMessage:
    """One message: its file, its ids, and when it entered its folder (``seq``)."""

    immutable_id: str
    rest_id: str
    path: Path
    internet_message_id: str
    subject: str
    received: datetime
    seq: int


@dataclass
class Folder:
    """A mail folder, its messages, and the messages that left it (tombstones for delta)."""

    id: str
    display_name: str
    parent_id: str
    well_known: str | None = None
    generation: int = 0
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    removed: dict[str, tuple[str, int]] = field(default_factory=dict)  # imm -> (rest id, seq)

    def json(self, children: int) -> dict[str, Any]:
        return {"id": self.id, "displayName": self.display_name,
                "parentFolderId": self.parent_id, "childFolderCount": children,
                "unreadItemCount": len(self.messages), "totalItemCount": len(self.messages),
                "isHidden": False}


@dataclass(frozen=True)
class DeltaPage:
    """One page of a delta round: its items, and the link that continues it."""

    items: list[dict[str, Any]]
    next_state: str
    last: bool


def encode_state(folder: Folder, watermark: int) -> str:
    raw = json.dumps({"f": folder.id, "g": folder.generation, "w": watermark}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_state(token: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        state = None
    if not isinstance(state, dict):
        raise GraphFault(400, "ErrorInvalidRequest", "The delta token is malformed.")
    return state


class Mailbox:
    """One user's mailbox; every method holds the mailbox's lock."""

    def __init__(self, upn: str, directory: Path) -> None:
        self.upn, self.directory = upn, directory
        directory.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._seq = 0
        self.folders: dict[str, Folder] = {}
        self._by_rest: dict[str, str] = {}  # rest id -> immutable id
        root = Folder(_new_id("AAMkRoot"), "Top of Information Store", "", ROOT)
        self.folders[root.id] = root
        for name, display in WELL_KNOWN.items():
            self._add_folder(display, root.id, name)

    def _add_folder(self, name: str, parent: str, well_known: str | None = None) -> Folder:
        folder = Folder(_new_id("AAMkFld"), name, parent, well_known)
        self.folders[folder.id] = folder
        return folder

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ---- folders
    def folder(self, ref: str) -> Folder:
        """A folder by id or well-known name (case-insensitive, as Graph takes them)."""
        with self.lock:
            found = self.folders.get(ref) or next(
                (f for f in self.folders.values() if f.well_known == ref.lower()), None)
            if found is None:
                raise not_found()
            return found

    def children(self, parent: str) -> list[Folder]:
        with self.lock:
            return [f for f in self.folders.values() if f.parent_id == parent]

    def create_folder(self, parent: str, name: str) -> Folder:
        with self.lock:
            if any(f.display_name.lower() == name.lower() for f in self.children(parent)):
                raise GraphFault(409, "ErrorFolderExists",
                                 "A folder with the specified name already exists.")
            return self._add_folder(name, parent)

    def folder_at(self, path: str) -> Folder:
        """A folder by its display-name path (``Inbox/Approvals``), for tests' setup."""
        with self.lock:
            current = self.folder(ROOT)
            for part in path.split("/"):
                current = next((f for f in self.children(current.id)
                                if f.display_name.lower() == part.lower()), None) or \
                    self.create_folder(current.id, part)
            return current

    def find(self, path: str) -> Folder | None:
        """The folder at a display-name path, or None."""
        with self.lock:
            current: Folder | None = self.folder(ROOT)
            for part in path.split("/"):
                assert current is not None
                current = next((f for f in self.children(current.id)
                                if f.display_name.lower() == part.lower()), None)
                if current is None:
                    return None
            return current

    # ---- messages
    def deliver(self, raw: bytes, folder: Folder) -> StoredMessage:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        with self.lock:
            immutable = _new_id("AAkALg")
            path = self.directory / f"{immutable}.eml"
            path.write_bytes(raw)
            stored = StoredMessage(immutable, _new_id(), path, str(headers["Message-ID"] or ""),
                                   str(headers["Subject"] or ""), datetime.now(UTC),
                                   self._next_seq())
            folder.messages[immutable] = stored
            self._by_rest[stored.rest_id] = immutable
            return stored

    def message(self, message_id: str) -> tuple[Folder, StoredMessage]:
        """A message by its REST or immutable id, with the folder holding it."""
        with self.lock:
            immutable = self._by_rest.get(message_id, message_id)
            for folder in self.folders.values():
                if immutable in folder.messages:
                    return folder, folder.messages[immutable]
            raise not_found()

    def move(self, message_id: str, destination: Folder) -> StoredMessage:
        """Move a message: a new REST id, a new place in the destination's sequence."""
        with self.lock:
            source, stored = self.message(message_id)
            del source.messages[stored.immutable_id]
            source.removed[stored.immutable_id] = (stored.rest_id, self._next_seq())
            del self._by_rest[stored.rest_id]
            stored.rest_id, stored.seq = _new_id(), self._next_seq()
            self._by_rest[stored.rest_id] = stored.immutable_id
            destination.messages[stored.immutable_id] = stored
            destination.removed.pop(stored.immutable_id, None)
            return stored

    def delta(self, folder: Folder, watermark: int, size: int, *,
              immutable: bool) -> DeltaPage:
        """The changes of ``folder`` after ``watermark``: at most ``size`` of them."""
        with self.lock:
            changes: list[tuple[int, dict[str, Any]]] = [
                (m.seq, message_json(m, folder, immutable=immutable))
                for m in folder.messages.values() if m.seq > watermark]
            if watermark:  # an initial round reports what is there, not what left
                changes += [(seq, _removed(imm if immutable else rest))
                            for imm, (rest, seq) in folder.removed.items() if seq > watermark]
            changes.sort(key=lambda change: change[0])
            page = changes[:size]
            mark = page[-1][0] if page else watermark
            return DeltaPage([item for _, item in page], encode_state(folder, mark),
                             len(changes) <= size)


def _removed(message_id: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.message", "id": message_id,
            "@removed": {"reason": "deleted"}}


def message_json(stored: StoredMessage, folder: Folder, *, immutable: bool) -> dict[str, Any]:
    """A message as delta, GET and move return it (REST or immutable id, as preferred)."""
    return {"@odata.type": "#microsoft.graph.message",
            "@odata.etag": f'W/"CQAAABYAAAB{stored.seq:08d}"',
            "id": stored.immutable_id if immutable else stored.rest_id,
            "receivedDateTime": stored.received.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "internetMessageId": stored.internet_message_id, "subject": stored.subject,
            "parentFolderId": folder.id}
