"""``ackmail request create``: register a pending approval or alert and print what to send."""

from __future__ import annotations

import argparse
import json

from ingest.cli.context import CommandContext
from ingest.errors import ConfigError
from ingest.register import NewRequest, register_request
from ingest.store.db import transaction
from ingest.store.models import RequestKind
from ingest.timeutil import parse_duration


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("request", help="register a request awaiting replies")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="register a pending request; prints JSON")
    create.add_argument("--kind", required=True, choices=[k.value for k in RequestKind])
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
    create.set_defaults(handler=run_create)


def _duration(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def run_create(ctx: CommandContext) -> int:
    a = ctx.args
    settings = ctx.settings
    if settings.security.token_secret is None:
        raise ConfigError(
            f"{settings.path}: [security] token_secret is not set; requests need it "
            "to sign their tokens (run 'ackmail init' to generate one)"
        )
    new = NewRequest(
        kind=RequestKind(a.kind),
        ref=a.ref,
        responders=tuple(a.responder),
        subject=a.subject,
        policy=a.policy,
        expires_in=parse_duration(a.expires or settings.requests.default_expires),
    )
    with transaction(ctx.store()) as session:
        registered = register_request(
            session, new, secret=settings.security.token_secret.reveal(), config=settings.requests
        )
    print(json.dumps(registered.as_json(), indent=2, ensure_ascii=False))
    return 0
