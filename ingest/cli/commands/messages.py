"""``ackmail messages list`` and ``messages reprocess ID | --status quarantined``.

Every message seen, why it was or was not used, and running kept messages
through the pipeline again.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ingest.cli.arguments import actions_of, choices, list_parser, page_of, since
from ingest.cli.context import CommandContext
from ingest.cli.output import render
from ingest.errors import UserError
from ingest.parse.base import MessageKind
from ingest.store.statuses import MessageStatus

if TYPE_CHECKING:
    from sqlalchemy import Engine

REPROCESSABLE = (MessageStatus.QUARANTINED.value, MessageStatus.IGNORED.value)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    messages = sub.add_parser("messages", help="every message seen, and why it was or was not used")
    actions = actions_of(messages)
    listing = list_parser(actions, "list messages, newest first")
    listing.add_argument("--status", choices=choices(MessageStatus))
    listing.add_argument("--kind", choices=choices(MessageKind))
    listing.add_argument("--mailbox", metavar="NAME")
    listing.add_argument("--since", type=since, help="recorded within (24h, 7d) or after a date")
    listing.set_defaults(handler=run_list)
    again = actions.add_parser(
        "reprocess", help="run an ignored or quarantined message through the pipeline again"
    )
    target = again.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", type=int, help="the message id (see 'messages list')")
    target.add_argument("--status", choices=REPROCESSABLE, help="every message with this status")
    again.set_defaults(handler=run_reprocess)


def run_list(ctx: CommandContext) -> int:
    from ingest.store import queries
    from ingest.store.db import read_session

    a = ctx.args
    with read_session(ctx.store()) as session:
        rows = queries.list_messages(
            session, status=a.status, mailbox=a.mailbox, kind=a.kind, since=a.since, page=page_of(a)
        )
    print(render(rows, queries.MESSAGE_COLUMNS, a.format))
    return 0


def run_reprocess(ctx: CommandContext) -> int:
    """Reprocess one message or all of a status; 1 if any could not be reprocessed."""
    from ingest.pipeline import PipelineConfig, reprocess

    engine = ctx.store()
    config = PipelineConfig.from_settings(ctx.settings)
    ids = [ctx.args.id] if ctx.args.id is not None else _ids_with(engine, ctx.args.status)
    if not ids:
        print(f"no {ctx.args.status} messages")
        return 0
    failures = 0
    for message_id in ids:
        try:
            result = reprocess(engine, config, message_id)
        except UserError as exc:
            print(f"message #{message_id}: not reprocessed: {exc}")
            failures += 1
            continue
        print(f"message #{message_id}: now #{result.message_id}, {result.status}: {result.reason}")
    return 1 if failures else 0


def _ids_with(engine: Engine, status: str) -> list[int]:
    from sqlalchemy import select

    from ingest.store.db import read_session
    from ingest.store.models import Message

    with read_session(engine) as session:
        query = select(Message.id).where(Message.status == MessageStatus(status))
        return list(session.scalars(query.order_by(Message.id)))
