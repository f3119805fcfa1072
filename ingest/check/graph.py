"""``ackmail check`` for a Microsoft Graph mailbox: token, mailbox, folder, message count.

The token step shows what the token grants (its ``roles`` or ``scp``, decoded, never
the token) and what looks wrong with it for Graph; the mailbox step is the first call
to Graph, where a 403 is explained (permission, or RBAC scoping) with the PowerShell step.
"""

from __future__ import annotations

from ingest.auth import AuthKind, decode_claims, explain_token
from ingest.auth.claims import MalformedToken, token_kind
from ingest.check.base import Probe, Step
from ingest.sources.base import SourceOptions
from ingest.sources.graph_folders import FolderMissing, resolve_folder
from ingest.sources.graph_http import GraphClient


def step_graph_token(probe: Probe) -> str:
    """A new token from the identity provider, described by what it grants."""
    box = probe.box
    token, minutes = probe.fresh_token()
    try:
        claims = decode_claims(token.secret)
    except MalformedToken as exc:
        probe.notes.append(str(exc))
        return f"new access token from the identity provider, valid {minutes} min"
    probe.notes.extend(explain_token(claims, box))
    granted = (f"roles {', '.join(claims.get('roles') or ()) or '(none)'}"
               if "roles" in claims else f"scp {claims.get('scp') or '(none)'}")
    app = token_kind(claims) is AuthKind.APP
    who = "the app" if app else token.account or box.username
    return f"new access token for {who}, audience {claims.get('aud')}, {granted}, " \
           f"valid {minutes} min"


def step_graph_mailbox(probe: Probe) -> str:
    """The mailbox opens through Graph (a 403 is diagnosed by the client)."""
    box = probe.box
    probe.graph = GraphClient(box, probe.providers, SourceOptions(timeout_seconds=probe.timeout))
    probe.graph.json("GET", "/mailFolders/inbox", action="opening the mailbox")
    return f"{box.graph_endpoint} opened mailbox {box.username}"


def step_graph_folder(probe: Probe) -> str:
    """The watched folder is there; how many messages it holds; the destinations."""
    client, box = probe.graph, probe.box
    assert client is not None
    folder_id = resolve_folder(client, box.folder, create=False)
    folder = client.json("GET", f"/mailFolders/{folder_id}", action="reading the folder")
    for name in dict.fromkeys((box.processed_folder, box.quarantine_folder)):
        if name:
            try:
                resolve_folder(client, name, create=False)
            except FolderMissing:
                probe.notes.append(f"'{name}' does not exist yet; the first poll creates it")
    return f"'{box.folder}' found; {int(folder.get('totalItemCount') or 0)} messages"


GRAPH_STEPS: tuple[tuple[str, Step], ...] = (
    ("token", step_graph_token),
    ("mailbox", step_graph_mailbox),
    ("folder", step_graph_folder),
)
