"""Folder paths to Graph folder ids: ``Inbox``, ``Inbox/Approvals``, ``Archive/2026``.

The first segment may be one of Graph's well-known folder names (in any case, and as
English display names such as "Sent Items"): those are found by name whatever the
mailbox's language. Every other segment is a child folder's display name, matched as
Exchange matches them (case-insensitively). ``/`` separates the segments.
"""

from __future__ import annotations

import logging

from ingest.errors import UserError
from ingest.sources.graph_http import GraphClient

log = logging.getLogger(__name__)

# Graph's well-known names, keyed by how a configuration may spell them.
WELL_KNOWN = {"inbox": "inbox", "archive": "archive", "drafts": "drafts",
              "sentitems": "sentitems", "sent items": "sentitems",
              "deleteditems": "deleteditems", "deleted items": "deleteditems",
              "junkemail": "junkemail", "junk email": "junkemail"}
ROOT = "msgfolderroot"


class FolderMissing(UserError):
    """A configured Graph folder does not exist in the mailbox."""


def _quoted(name: str) -> str:
    """``name`` as an OData string literal (a quote is doubled)."""
    return "'" + name.replace("'", "''") + "'"


def _child(client: GraphClient, parent: str, name: str) -> str | None:
    """The id of ``parent``'s child folder named ``name``, or None."""
    answer = client.json("GET", f"/mailFolders/{parent}/childFolders?$filter=displayName eq "
                         f"{_quoted(name)}", action=f"looking up folder '{name}'")
    found = answer.get("value") or []
    return str(found[0]["id"]) if found else None


def resolve_folder(client: GraphClient, path: str, *, create: bool) -> str:
    """The id of the folder at ``path``; missing folders are created when ``create``."""
    box = client.box
    parts = [part for part in path.split("/") if part]
    if not parts:
        raise FolderMissing(f"mailbox '{box.name}': the folder '{path}' is empty; name a "
                            "folder such as Inbox or Inbox/Approvals")
    first = WELL_KNOWN.get(parts[0].lower())
    parent = first or ROOT
    rest = parts[1:] if first else parts
    for depth, name in enumerate(rest):
        found = _child(client, parent, name)
        if found is None and create:
            log.info("mailbox '%s': creating folder '%s'", box.name,
                     "/".join(parts[:len(parts) - len(rest) + depth + 1]))
            answer = client.json("POST", f"/mailFolders/{parent}/childFolders",
                                 {"displayName": name}, action=f"creating folder '{name}'")
            found = str(answer["id"])
        if found is None:
            raise FolderMissing(f"mailbox '{box.name}': the folder '{path}' does not exist in "
                                f"mailbox {box.username} ('{name}' is missing); fix folder in "
                                "its [[mailbox]] table")
        parent = found
    if first and not rest:
        # A well-known name: its id, so that every source key names the same folder.
        answer = client.json("GET", f"/mailFolders/{first}", action=f"opening folder '{path}'")
        return str(answer["id"])
    return parent
