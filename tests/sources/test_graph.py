"""Microsoft Graph against the Graph-shaped test server: delta, moves, throttling, access.

Every test polls through the real poller with real tokens from the test identity
provider, over TLS, and looks at both the database and the server's mailbox.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, select

from ingest.auth import TokenProviders
from ingest.store.db import read_session
from ingest.store.models import Checkpoint, Event, Request, RequestStatus
from tests.auth.conftest import APP_ID, SHARED
from tests.servers.graph import GraphServer
from tests.servers.idp import IdentityProvider
from tests.sources.conftest import (
    FAST_SOURCE,
    GraphMailbox,
    PollerFactory,
    poll_once,
    running,
    wait_for,
)
from tests.sources.mail import message_count, reply, request_for, source_keys, unrelated

PAGED = replace(FAST_SOURCE, first_batch_size=2, batch_size=3)
PROCESSED = "ackmail/processed"


def _poll(make_poller: PollerFactory, engine: Engine, providers: TokenProviders,
          *boxes: Any, **options: Any) -> Any:
    (summary,) = poll_once(make_poller, engine, *boxes, providers=providers,
                           **options).mailboxes
    return summary


def _auth_events(engine: Engine) -> list[Event]:
    with read_session(engine) as session:
        return list(session.scalars(select(Event).where(Event.type == "auth.failed")))


def test_poll_once_pages_through_delta_records_each_message_once_and_moves_it(
        graph: GraphServer, graph_mailbox: GraphMailbox, sqlite_engine: Engine,
        make_poller: PollerFactory, token_providers: TokenProviders) -> None:
    request = request_for(sqlite_engine)
    graph.deliver(SHARED, reply(request.recipients[0].token))
    graph.deliver_many(SHARED, [unrelated() for _ in range(6)])

    summary = _poll(make_poller, sqlite_engine, token_providers, graph_mailbox(), source=PAGED)

    assert (summary.processed, summary.ignored, summary.error) == (1, 6, None)
    assert graph.list_folder(SHARED) == 0 and graph.list_folder(SHARED, PROCESSED) == 7
    keys = source_keys(sqlite_engine)
    inbox = graph.mailbox(SHARED).folder("inbox").id
    assert len(set(keys)) == 7 and all(key.startswith(f"graph:{inbox}:") for key in keys)
    # A first page of 2, then pages of 3 (moved messages come back as @removed rows).
    pages = graph.requests("/delta")
    assert len(pages) >= 4 and len(graph.requests("$skiptoken=")) == len(pages) - 1
    assert "odata.maxpagesize=2" in pages[0].prefer and "odata.maxpagesize=3" in pages[1].prefer
    with read_session(sqlite_engine) as session:
        assert session.get_one(Request, request.id).status == RequestStatus.APPROVED
        checkpoint = session.scalars(select(Checkpoint)).one()
    assert checkpoint.sync_token is not None and "$deltatoken=" in checkpoint.sync_token

    graph.deliver(SHARED, unrelated())
    again = _poll(make_poller, sqlite_engine, token_providers, graph_mailbox())

    assert (again.ignored, again.duplicates) == (1, 0)
    assert message_count(sqlite_engine) == 8
    assert graph.requests("$deltatoken="), "the second poll resumed from the delta link"


def test_a_watched_subfolder_is_found_and_a_missing_one_is_a_sentence(
        graph: GraphServer, graph_mailbox: GraphMailbox, sqlite_engine: Engine,
        make_poller: PollerFactory, token_providers: TokenProviders) -> None:
    graph.deliver(SHARED, unrelated(), "Inbox/Approvals")
    found = _poll(make_poller, sqlite_engine, token_providers,
                  graph_mailbox(folder="Inbox/Approvals", processed_folder="Inbox/Approvals/Done"))
    assert (found.ignored, found.error) == (1, None)
    assert graph.list_folder(SHARED, "Inbox/Approvals/Done") == 1

    missing = _poll(make_poller, sqlite_engine, token_providers,
                    graph_mailbox(name="other", folder="Inbox/Nowhere"))
    assert missing.error is not None and "the folder 'Inbox/Nowhere' does not exist" in \
        missing.error and "fix folder in its [[mailbox]] table" in missing.error
    assert graph.mailbox(SHARED).find("Inbox/Nowhere") is None


def test_a_gone_delta_link_resyncs_the_folder_without_recording_anything_twice(
        graph: GraphServer, graph_mailbox: GraphMailbox, sqlite_engine: Engine,
        make_poller: PollerFactory, token_providers: TokenProviders) -> None:
    box = graph_mailbox(processed_folder=None)  # mail stays in the Inbox, marked read
    graph.deliver_many(SHARED, [unrelated() for _ in range(3)])
    assert _poll(make_poller, sqlite_engine, token_providers, box).ignored == 3
    graph.invalidate_delta(SHARED)
    graph.deliver(SHARED, unrelated())

    resynced = _poll(make_poller, sqlite_engine, token_providers, box)

    assert [r.status for r in graph.requests("$deltatoken=")] == [410]
    assert (resynced.ignored, resynced.duplicates) == (1, 3)
    assert message_count(sqlite_engine) == 4 and graph.list_folder(SHARED) == 4


def test_the_same_message_delivered_twice_is_recorded_once_and_both_are_filed(
        graph: GraphServer, graph_mailbox: GraphMailbox, sqlite_engine: Engine,
        make_poller: PollerFactory, token_providers: TokenProviders) -> None:
    raw = unrelated()
    graph.deliver_many(SHARED, [raw, raw])

    summary = _poll(make_poller, sqlite_engine, token_providers, graph_mailbox())

    assert (summary.ignored, summary.duplicates) == (1, 1)
    assert message_count(sqlite_engine) == 1
    assert graph.list_folder(SHARED) == 0 and graph.list_folder(SHARED, PROCESSED) == 2


def test_throttling_is_waited_out_for_as_long_as_retry_after_says(
        graph: GraphServer, graph_mailbox: GraphMailbox, sqlite_engine: Engine,
        make_poller: PollerFactory, token_providers: TokenProviders) -> None:
    graph.deliver_many(SHARED, [unrelated() for _ in range(2)])
    box = graph_mailbox()
    assert _poll(make_poller, sqlite_engine, token_providers, box).error is None
    graph.deliver(SHARED, unrelated())
    graph.throttle_next(1, retry_after=1.5)
    graph.throttle_next(1, retry_after=0.5, status=503)

    summary = _poll(make_poller, sqlite_engine, token_providers, box)

    assert (summary.ignored, summary.error) == (1, None)
    seen = graph.requests()
    busy = [n for n, r in enumerate(seen) if r.status in (429, 503)]
    assert [seen[n].status for n in busy] == [429, 503]
    assert seen[busy[0] + 1].at - seen[busy[0]].at >= 1.45
    assert seen[busy[1] + 1].at - seen[busy[1]].at >= 0.45


def test_no_more_than_four_requests_are_in_flight_on_a_mailbox(
        graph: GraphServer, graph_mailbox: GraphMailbox, sqlite_engine: Engine,
        make_poller: PollerFactory, token_providers: TokenProviders) -> None:
    graph.deliver_many(SHARED, [unrelated() for _ in range(24)])
    graph.delay = 0.05

    summary = _poll(make_poller, sqlite_engine, token_providers, graph_mailbox())

    assert (summary.ignored, summary.error) == (24, None)
    assert 2 <= graph.max_in_flight[SHARED.lower()] <= 4
    assert not [r for r in graph.requests() if r.status == 429]


def test_a_refused_token_is_renewed_once(
        graph: GraphServer, graph_mailbox: GraphMailbox, idp: IdentityProvider,
        sqlite_engine: Engine, make_poller: PollerFactory,
        token_providers: TokenProviders) -> None:
    box = graph_mailbox()
    assert _poll(make_poller, sqlite_engine, token_providers, box).error is None
    graph.revoke_seen_tokens()  # the cached token is still valid by its expiry
    graph.deliver(SHARED, unrelated())

    summary = _poll(make_poller, sqlite_engine, token_providers, box)

    assert (summary.ignored, summary.error) == (1, None)
    assert [r.status for r in graph.requests() if r.status == 401] == [401]
    assert len(idp.requests("client_credentials")) == 2
    assert not _auth_events(sqlite_engine)


def test_a_token_graph_keeps_refusing_is_an_auth_failure_naming_the_audience(
        graph: GraphServer, graph_mailbox: GraphMailbox, sqlite_engine: Engine,
        make_poller: PollerFactory, token_providers: TokenProviders) -> None:
    base = graph_mailbox()
    assert base.oauth is not None
    box = replace(base, oauth=replace(base.oauth,
                                      scopes=("https://outlook.office365.com/.default",)))

    summary = _poll(make_poller, sqlite_engine, token_providers, box)

    [event] = _auth_events(sqlite_engine)
    assert summary.error is not None and "Traceback" not in summary.error
    assert "not https://graph.microsoft.com" in event.payload["cause"]
    assert "Microsoft Graph scopes" in event.payload["fix"]


def test_a_mailbox_outside_the_apps_rbac_scope_is_an_auth_failure_with_the_powershell_step(
        graph: GraphServer, graph_mailbox: GraphMailbox, sqlite_engine: Engine,
        make_poller: PollerFactory, token_providers: TokenProviders) -> None:
    graph.scope_app(APP_ID, {"someone-else@example.test"})
    graph.deliver(SHARED, unrelated())

    summary = _poll(make_poller, sqlite_engine, token_providers, graph_mailbox())

    [event] = _auth_events(sqlite_engine)
    assert summary.error is not None and "Access is denied" in event.payload["cause"]
    fix = event.payload["fix"]
    assert 'New-ManagementRoleAssignment -App ' + APP_ID in fix
    assert '-Role "Application Mail.ReadWrite"' in fix and "-CustomResourceScope" in fix
    assert "New-ApplicationAccessPolicy" in fix and "-AccessRight RestrictAccess" in fix
    assert event.payload["token"]["roles"] == ["Mail.ReadWrite"]
    assert graph.list_folder(SHARED) == 1 and message_count(sqlite_engine) == 0


def test_an_app_without_mail_readwrite_is_told_to_add_the_graph_permission(
        graph: GraphServer, graph_mailbox: GraphMailbox, idp: IdentityProvider,
        sqlite_engine: Engine, make_poller: PollerFactory,
        token_providers: TokenProviders) -> None:
    idp.graph_grants = {"roles": ["Mail.Read"]}

    _poll(make_poller, sqlite_engine, token_providers, graph_mailbox())

    [event] = _auth_events(sqlite_engine)
    assert "the token lacks Mail.ReadWrite in roles" in event.payload["cause"]
    assert event.payload["fix"] == (
        "add the Microsoft Graph application permission Mail.ReadWrite to the app and grant "
        'admin consent, or assign it in Exchange Online (New-ManagementRoleAssignment -Role '
        '"Application Mail.ReadWrite")')


def test_an_app_assigned_the_mailbox_by_rbac_for_applications_needs_no_token_role(
        graph: GraphServer, graph_mailbox: GraphMailbox, idp: IdentityProvider,
        sqlite_engine: Engine, make_poller: PollerFactory,
        token_providers: TokenProviders) -> None:
    idp.graph_grants = {"roles": []}  # no tenant-wide consent: Exchange's RBAC grants it
    graph.assign_rbac(APP_ID, {SHARED})
    graph.deliver(SHARED, unrelated())

    summary = _poll(make_poller, sqlite_engine, token_providers, graph_mailbox())

    assert (summary.ignored, summary.error) == (1, None)
    assert graph.list_folder(SHARED, PROCESSED) == 1


def test_the_poll_interval_is_waited_between_delta_queries(
        graph: GraphServer, graph_mailbox: GraphMailbox, sqlite_engine: Engine,
        make_poller: PollerFactory, token_providers: TokenProviders) -> None:
    poller = make_poller(sqlite_engine, graph_mailbox(), providers=token_providers)
    with running(poller):
        wait_for(lambda: len(graph.requests("/delta")) >= 1, what="the first delta query")
        started = time.monotonic()
        graph.deliver(SHARED, unrelated())
        wait_for(lambda: message_count(sqlite_engine) == 1, what="the new message recorded")
        waited = time.monotonic() - started
    deltas = [r.at for r in graph.requests("/delta")]
    assert waited < 3.0
    assert all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(deltas))
