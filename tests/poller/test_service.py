"""The poller as a whole: onboarding, dry runs, shutdown, auth failure episodes, upkeep."""

from __future__ import annotations

import mailbox
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy import Engine, func, select, update

from ingest.auth import TokenProviders
from ingest.auth.cache import TokenCacheFile
from ingest.auth.tokens import cache_path
from ingest.config import MailboxConfig, Settings
from ingest.errors import ConfigError, UserError
from ingest.pipeline import PipelineConfig, Processed
from ingest.poller.service import Poller, single_sqlite_poller
from ingest.poller.upkeep import AUTH_CHECKED
from ingest.sources.base import SourceRef
from ingest.store.db import read_session, transaction
from ingest.store.models import (
    Checkpoint,
    Event,
    Message,
    RawMessage,
    Request,
    RequestStatus,
    Response,
)
from ingest.timeutil import utcnow
from tests.auth.certs import make_certificate
from tests.auth.conftest import APP_ID, sign_in_by_device_code
from tests.servers.dovecot import DovecotHarnessError, DovecotServer
from tests.servers.idp import IdentityProvider
from tests.sources import conftest as shared
from tests.sources.conftest import (
    FAST_RETRY,
    FAST_SOURCE,
    OAuthMailbox,
    PollerFactory,
    imap_mailbox,
    poll_once,
    running,
    settings_for,
    wait_for,
)
from tests.sources.mail import event_types, message_count, reply, request_for, unrelated

# Fixtures shared with tests/sources, named here so pytest finds them for this module.
make_poller = shared.make_poller
sqlite_engine = shared.sqlite_engine
oauth_server = shared.oauth_server
oauth_mailbox = shared.oauth_mailbox
token_providers = shared.token_providers


def _reasons(engine: Engine) -> list[str]:
    with read_session(engine) as session:
        return list(session.scalars(select(Message.reason).order_by(Message.id)))


def test_mail_from_before_the_first_watch_is_left_alone_unless_it_answers(
        dovecot: DovecotServer, engine: Engine, make_poller: PollerFactory) -> None:
    request = request_for(engine)
    bob = dovecot.users.bob.address
    dovecot.deliver(bob, unrelated())
    dovecot.deliver(bob, reply(request.recipients[0].token))
    time.sleep(1.1)  # INTERNALDATE has whole seconds

    first = poll_once(make_poller, engine, imap_mailbox(dovecot))
    dovecot.deliver(bob, unrelated())
    second = poll_once(make_poller, engine, imap_mailbox(dovecot))

    assert (first.mailboxes[0].processed, first.mailboxes[0].ignored) == (1, 1)
    assert second.mailboxes[0].ignored == 1
    old, answer, new = _reasons(engine)
    assert "before ackmail started watching" in old
    assert "before" not in answer
    assert "not an answer to any request" in new
    assert "message.unmatched" in event_types(engine)  # only for the new one
    assert event_types(engine).count("message.unmatched") == 1


def test_from_date_sets_the_onboarding_cut_off(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    dovecot.deliver(dovecot.users.bob.address, unrelated())

    poll_once(make_poller, sqlite_engine, imap_mailbox(dovecot),
              backlog_from=utcnow() + timedelta(days=1))

    assert "before ackmail started watching" in _reasons(sqlite_engine)[0]


def _unseen(server: DovecotServer) -> int:
    bob = server.users.bob
    assert bob.password is not None
    with IMAPClient(server.host, port=server.imaps_port, ssl_context=server.client_context(),
                    timeout=10) as client:
        client.login(bob.address, bob.password.reveal())
        client.select_folder("INBOX", readonly=True)
        return len(client.search(["UNSEEN"]))


def test_a_dry_run_reports_and_leaves_database_and_server_untouched(
        dovecot: DovecotServer, engine: Engine, make_poller: PollerFactory) -> None:
    request = request_for(engine)
    bob = dovecot.users.bob.address
    dovecot.deliver(bob, reply(request.recipients[0].token))
    dovecot.deliver(bob, unrelated())
    seen: list[tuple[str, Processed]] = []

    def report(mailbox: str, ref: SourceRef, result: Processed) -> None:
        seen.append((ref.source_key, result))

    poller = make_poller(engine, imap_mailbox(dovecot), once=True, dry_run=True)
    poller.report = report
    summary = poller.run()

    assert (summary.mailboxes[0].processed, summary.mailboxes[0].ignored) == (1, 1)
    assert [result.status for _, result in seen] == ["processed", "ignored"]
    assert message_count(engine) == 0 and event_types(engine) == []
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Checkpoint)) == 0
    assert (dovecot.list_folder(bob), _unseen(dovecot)) == (2, 2)
    with pytest.raises(DovecotHarnessError, match="doesn't exist"):
        dovecot.list_folder(bob, "ackmail/processed")  # not even created


def test_stop_finishes_the_batch_in_hand_and_files_only_what_is_recorded(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    bob = dovecot.users.bob.address
    dovecot.deliver_many(bob, [unrelated() for _ in range(5)])
    poller = make_poller(sqlite_engine, imap_mailbox(dovecot),
                         source=replace(FAST_SOURCE, batch_size=2))
    poller.report = lambda mailbox, ref, result: poller.stop()

    summary = poller.run()

    assert summary.mailboxes[0].ignored == 2
    assert (dovecot.list_folder(bob), dovecot.list_folder(bob, "ackmail/processed")) == (3, 2)
    with read_session(sqlite_engine) as session:
        assert session.scalars(select(Checkpoint.last_uid)).one() == 2


def test_the_checkpoint_follows_filing_and_ends_at_the_last_message(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    bob = dovecot.users.bob.address
    dovecot.deliver_many(bob, [unrelated() for _ in range(7)])
    poller = make_poller(sqlite_engine, imap_mailbox(dovecot),
                         source=replace(FAST_SOURCE, batch_size=2), once=True)
    seen: list[tuple[int, int]] = []

    def checkpoint_and_filed(mailbox: str, ref: SourceRef, result: Processed) -> None:
        with read_session(sqlite_engine) as session:
            checkpoint = session.scalars(select(Checkpoint.last_uid)).one_or_none() or 0
        seen.append((checkpoint, dovecot.list_folder(bob, "ackmail/processed")))

    poller.report = checkpoint_and_filed
    poller.run()

    # Written with a later batch's record, the checkpoint is never ahead of the filing
    # (UIDs 1..7 here), and it moves during the pass, not only at its end.
    assert all(checkpoint <= filed for checkpoint, filed in seen), seen
    assert any(checkpoint > 0 for checkpoint, _ in seen), seen
    with read_session(sqlite_engine) as session:
        assert session.scalars(select(Checkpoint.last_uid)).one() == 7
    assert dovecot.list_folder(bob, "ackmail/processed") == 7


def test_several_mailboxes_are_polled_by_one_process(
        dovecot: DovecotServer, tmp_path: Path, sqlite_engine: Engine,
        make_poller: PollerFactory) -> None:
    local = tmp_path / "Maildir"
    mailbox.Maildir(local, create=True).add(unrelated())
    dovecot.deliver_many(dovecot.users.bob.address, [unrelated(), unrelated()])
    boxes = (imap_mailbox(dovecot),
             MailboxConfig(name="local", protocol="maildir", path=local))

    summary = poll_once(make_poller, sqlite_engine, *boxes)

    assert [(s.mailbox, s.ignored) for s in summary.mailboxes] == [("approvals", 2),
                                                                   ("local", 1)]


def test_unknown_mailbox_names_and_empty_configurations_are_refused(
        tmp_path: Path, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    box = MailboxConfig(name="local", protocol="maildir", path=tmp_path)

    with pytest.raises(ConfigError, match="no \\[\\[mailbox\\]\\] is named 'other'"):
        make_poller(sqlite_engine, box, mailboxes=("other",))
    with pytest.raises(ConfigError, match="nothing to poll"):
        make_poller(sqlite_engine)


def _checkpoint(engine: Engine, mailbox: str) -> Checkpoint:
    with read_session(engine) as session:
        return session.scalars(select(Checkpoint).where(Checkpoint.mailbox == mailbox)).one()


def test_a_lapsed_sign_in_records_one_auth_failed_event_and_other_mailboxes_go_on(
        idp: IdentityProvider, oauth_server: DovecotServer, oauth_mailbox: OAuthMailbox,
        token_providers: TokenProviders, sqlite_engine: Engine,
        make_poller: PollerFactory) -> None:
    idp.token_lifetime = 120  # under MSAL's 5 minutes: every login refreshes
    alice = oauth_mailbox("oauth2-delegated", processed_folder="done")
    sign_in_by_device_code(idp, token_providers.for_subject(alice))
    idp.revoke_refresh_tokens(alice.username)
    bob = imap_mailbox(oauth_server)
    oauth_server.deliver(alice.username, unrelated())

    with running(make_poller(sqlite_engine, alice, bob, providers=token_providers)):
        wait_for(lambda: "auth.failed" in event_types(sqlite_engine), what="the auth failure")
        time.sleep(4 * FAST_RETRY.slow_retry_seconds)  # several retries, same episode
        oauth_server.deliver(bob.username, unrelated())
        wait_for(lambda: message_count(sqlite_engine) == 1, what="bob's message")
        assert event_types(sqlite_engine).count("auth.failed") == 1
        assert oauth_server.list_folder(alice.username) == 1  # alice's mail left alone

        sign_in_by_device_code(idp, token_providers.for_subject(alice))
        wait_for(lambda: message_count(sqlite_engine) == 2, what="alice's message")

    with read_session(sqlite_engine) as session:
        event = session.scalars(select(Event).where(Event.type == "auth.failed")).one()
    assert event.mailbox == "alice"
    assert event.payload["command"] == "ackmail auth login alice"
    assert "revoked" in event.payload["cause"] and event.payload["fix"]
    checkpoint = _checkpoint(sqlite_engine, "alice")
    assert "auth_failure" not in checkpoint.state and checkpoint.last_error is None


def test_background_tasks_run_every_tick_and_once_after_a_drain(
        tmp_path: Path, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    mailbox.Maildir(tmp_path / "Maildir", create=True)
    box = MailboxConfig(name="local", protocol="maildir", path=tmp_path / "Maildir")
    ticks: list[float] = []

    def task() -> None:
        ticks.append(time.monotonic())

    poll_once(make_poller, sqlite_engine, box, background=(task,))
    assert len(ticks) == 1
    poll_once(make_poller, sqlite_engine, box, background=(task,), dry_run=True)
    assert len(ticks) == 1  # a dry run dispatches nothing
    with running(make_poller(sqlite_engine, box, background=(task,))):
        wait_for(lambda: len(ticks) >= 4, 5, "three more ticks")


def test_upkeep_prunes_old_raw_bytes(
        tmp_path: Path, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    mailbox.Maildir(tmp_path / "Maildir", create=True).add(unrelated())
    box = MailboxConfig(name="local", protocol="maildir", path=tmp_path / "Maildir")
    poll_once(make_poller, sqlite_engine, box)
    with transaction(sqlite_engine) as session:
        session.execute(update(RawMessage).values(stored_at=utcnow() - timedelta(days=40)))

    poller = make_poller(sqlite_engine, box, settings=settings_for(tmp_path, box))

    assert poller.upkeep.prune() == 1
    with read_session(sqlite_engine) as session:
        assert session.scalar(select(func.count()).select_from(RawMessage)) == 0


def test_upkeep_warns_once_a_day_before_a_client_secret_lapses(
        oauth_mailbox: OAuthMailbox, token_providers: TokenProviders, sqlite_engine: Engine,
        make_poller: PollerFactory) -> None:
    soon = date.today() + timedelta(days=10)
    box = oauth_mailbox("oauth2-app", oauth={"client_secret_expires": soon})
    poller: Poller = make_poller(sqlite_engine, box, providers=token_providers, once=True)
    poller.run()
    poller.upkeep.tick()  # the same day: not again

    with read_session(sqlite_engine) as session:
        events = session.scalars(select(Event).where(Event.type == "auth.expiring")).all()
    assert len(events) == 1
    assert events[0].payload["mailbox"] == "shared"
    assert any("client secret" in w for w in events[0].payload["warnings"])
    assert AUTH_CHECKED in _checkpoint(sqlite_engine, "shared").state


def _age_last_refresh(settings: Settings, box: MailboxConfig, days: float) -> None:
    file = TokenCacheFile(cache_path(settings.state_dir, box), settings.security.cache_key,
                          subject="test", fix="-")
    contents = file.read()
    assert contents is not None
    file.write(replace(contents, meta=replace(contents.meta,
                                              last_refresh=utcnow() - timedelta(days=days))))


def test_upkeep_refreshes_a_grant_only_after_refresh_idle_days(
        idp: IdentityProvider, oauth_mailbox: OAuthMailbox, sqlite_engine: Engine,
        make_poller: PollerFactory, tmp_path: Path) -> None:
    alice = oauth_mailbox("oauth2-delegated")
    settings = settings_for(tmp_path, alice, refresh_idle_days=3)
    providers = TokenProviders(settings.state_dir, settings.security.cache_key, timeout=10.0)
    sign_in_by_device_code(idp, providers.for_subject(alice))
    poller: Poller = make_poller(sqlite_engine, alice, providers=providers, settings=settings)
    watched = poller.upkeep.watched[0]

    _age_last_refresh(settings, alice, days=2.9)
    poller.upkeep.auth_upkeep(watched)
    assert idp.requests("refresh_token") == []
    _age_last_refresh(settings, alice, days=3.1)
    poller.upkeep.auth_upkeep(watched)
    assert len(idp.requests("refresh_token")) == 1


def test_upkeep_warns_before_a_client_certificate_lapses(
        oauth_mailbox: OAuthMailbox, token_providers: TokenProviders, sqlite_engine: Engine,
        make_poller: PollerFactory, idp: IdentityProvider, tmp_path: Path) -> None:
    cert = make_certificate(tmp_path, days=20, pfx=True)
    idp.register_client(APP_ID, certificate_pem=cert.pem)
    box = oauth_mailbox("oauth2-app", oauth={"client_secret": None, "certificate": cert.config})
    poller: Poller = make_poller(sqlite_engine, box, providers=token_providers, once=True)
    poller.run()

    with read_session(sqlite_engine) as session:
        events = session.scalars(select(Event).where(Event.type == "auth.expiring")).all()
    assert len(events) == 1
    assert any("client certificate expires" in w and "in 20 days" in w
               for w in events[0].payload["warnings"])


def test_request_status_is_unchanged_by_a_dry_run(
        tmp_path: Path, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    request = request_for(sqlite_engine)
    mailbox.Maildir(tmp_path / "M", create=True).add(reply(request.recipients[0].token))
    box = MailboxConfig(name="local", protocol="maildir", path=tmp_path / "M")

    poll_once(make_poller, sqlite_engine, box, dry_run=True)

    with read_session(sqlite_engine) as session:
        assert session.get_one(Request, request.id).status == RequestStatus.PENDING
    assert len(list((tmp_path / "M" / "new").iterdir())) == 1


def test_sqlite_takes_one_poller_and_says_so(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        with single_sqlite_poller(engine), single_sqlite_poller(engine):
            return  # PostgreSQL shares mailboxes between pollers: no lock
    refused = r"another 'ackmail poll' is already running on the SQLite database .*one poller"
    with single_sqlite_poller(engine):
        with pytest.raises(UserError, match=refused), single_sqlite_poller(engine):
            pass
        with single_sqlite_poller(engine, dry_run=True):
            pass  # a dry run changes nothing, so it may look while the poller runs
    with single_sqlite_poller(engine):
        pass  # released when the first poller ended


def test_a_dmarc_failing_reply_from_the_responder_is_recorded_but_does_not_decide(
        dovecot: DovecotServer, engine: Engine, make_poller: PollerFactory,
        tmp_path: Path) -> None:
    request = request_for(engine)
    token = request.recipients[0].token
    verdict = ("Authentication-Results: dmarc={} action=none header.from=example.test;"
               "compauth={}\r\n")
    box = imap_mailbox(dovecot)
    settings = settings_for(tmp_path, box)
    settings = replace(settings, security=replace(
        settings.security, require_dmarc_pass=True, trust_exchange_online=True))
    pipeline = PipelineConfig.from_settings(settings)
    bob = dovecot.users.bob.address
    dovecot.deliver(bob, verdict.format("fail", "fail reason=000").encode() + reply(token))
    poll_once(make_poller, engine, box, settings=settings, pipeline=pipeline)
    with read_session(engine) as session:
        assert session.get_one(Request, request.id).status == RequestStatus.PENDING
        failed = session.scalars(select(Response)).one()
        assert (failed.sender_verified, failed.counted) == (False, False)
        assert "dmarc=fail by Exchange Online" in failed.reason

    dovecot.deliver(bob, verdict.format("pass", "pass reason=100").encode() + reply(token))
    poll_once(make_poller, engine, box, settings=settings, pipeline=pipeline)
    with read_session(engine) as session:
        assert session.get_one(Request, request.id).status == RequestStatus.APPROVED
