"""``ackmail request create``: register a pending approval or alert and print what to send.

With ``--send`` ackmail also sends each responder their email through ``[smtp]``
and records ``sent_at`` for every one that went out.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ingest.cli.arguments import choices
from ingest.cli.context import CommandContext
from ingest.config import Settings, SmtpConfig
from ingest.errors import ConfigError, UserError
from ingest.store.statuses import RequestKind
from ingest.timeutil import isoformat_z, parse_duration, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ingest.outgoing.request_mail import RecipientMail, SendFailure
    from ingest.register import RegisteredRequest


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("request", help="register a request awaiting replies")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="register a pending request; prints JSON")
    create.add_argument("--kind", required=True, choices=choices(RequestKind))
    create.add_argument("--ref", required=True, help="the workflow's own reference, e.g. CR-20631")
    create.add_argument(
        "--responder",
        required=True,
        action="append",
        metavar="ADDR",
        help="an address allowed to answer (repeat for several)",
    )
    create.add_argument("--subject", help="the request email's subject")
    create.add_argument(
        "--expires",
        type=_duration,
        metavar="DURATION",
        help="how long answers are accepted, e.g. 3d (default [requests] default_expires)",
    )
    create.add_argument("--policy", default="any", help="any | all | N responders must agree")
    create.add_argument(
        "--send", action="store_true", help="send each responder their email through [smtp]"
    )
    create.add_argument("--allow-duplicate-ref", action="store_true",
                        help="register even when a request with this --ref is still pending")
    create.set_defaults(handler=run_create)


def _duration(text: str) -> str:
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not duration:
        raise argparse.ArgumentTypeError(f"'{text}' must be positive, e.g. 3d")
    return text


def run_create(ctx: CommandContext) -> int:
    from ingest.register import NewRequest, register_request
    from ingest.store.db import transaction

    a = ctx.args
    settings = ctx.settings
    if settings.security.token_secret is None:
        raise ConfigError(
            f"{settings.path}: [security] token_secret is not set; requests need it "
            "to sign their tokens (run 'ackmail init' to generate one)"
        )
    smtp = _smtp_for_sending(settings) if a.send else None
    new = NewRequest(
        kind=RequestKind(a.kind),
        ref=a.ref,
        responders=tuple(a.responder),
        subject=a.subject,
        policy=a.policy,
        expires_in=parse_duration(a.expires or settings.requests.default_expires),
    )
    with transaction(ctx.store()) as session:
        if not a.allow_duplicate_ref:
            _refuse_pending_ref(session, a.ref)
        registered = register_request(
            session, new, secret=settings.security.token_secret.reveal(), config=settings.requests
        )
    output = registered.as_json()
    failures = _send(ctx, registered, smtp, output) if smtp is not None else []
    print(json.dumps(output, indent=2, ensure_ascii=False))
    for failure in failures:
        print(f"ackmail: the email to {failure.address} was not sent: {failure.error}",
              file=sys.stderr)
    if failures:
        print(f"ackmail: request #{registered.id} is registered; send the instructions above "
              "to the responders who did not get them", file=sys.stderr)
        return 1
    return 0


def _refuse_pending_ref(session: Session, ref: str) -> None:
    """A second pending request for one ref is usually a retried script, not a wish."""
    from sqlalchemy import select

    from ingest.store.models import Request, RequestStatus

    pending = session.scalar(select(Request.id).where(
        Request.ref == ref, Request.status == RequestStatus.PENDING).limit(1))
    if pending is not None:
        raise UserError(
            f"request #{pending} with ref {ref} is still pending, so nothing was registered; "
            "pass --allow-duplicate-ref to register another with the same ref"
        )


def _smtp_for_sending(settings: Settings) -> SmtpConfig:
    """Checked before the request is registered, so a missing [smtp] registers nothing."""
    if settings.smtp is None:
        raise ConfigError(
            f"{settings.path}: --send needs an [smtp] table to send through; add one "
            "(host, port, security, auth, from_address) or leave out --send"
        )
    return settings.smtp


def _send(
    ctx: CommandContext, registered: RegisteredRequest, smtp: SmtpConfig, output: dict[str, Any]
) -> list[SendFailure]:
    from sqlalchemy import update

    from ingest.app import token_providers
    from ingest.outgoing.request_mail import send_request_emails
    from ingest.outgoing.smtp import Mailer
    from ingest.store.db import transaction
    from ingest.store.models import Recipient

    settings = ctx.settings
    mailer = Mailer(smtp, token_providers(settings))
    sent_at: dict[str, str | None] = {}

    def record(recipient: RecipientMail) -> None:
        now = utcnow()
        with transaction(ctx.store()) as session:
            session.execute(
                update(Recipient).where(Recipient.token == recipient.token).values(sent_at=now)
            )
        sent_at[recipient.token] = isoformat_z(now)

    failures = send_request_emails(
        mailer,
        registered,
        registered.recipients,
        domain=settings.requests.message_id_domain,
        reply_to=settings.requests.reply_address,
        on_sent=record,
    )
    for entry in output["recipients"]:
        entry["sent_at"] = sent_at.get(entry["token"])
    return failures
