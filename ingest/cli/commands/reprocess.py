"""``ackmail messages reprocess ID | --status quarantined``: run kept messages through again."""

from __future__ import annotations

import argparse

from sqlalchemy import Engine, select

from ingest.cli.context import CommandContext
from ingest.errors import UserError
from ingest.pipeline import PipelineConfig, reprocess
from ingest.store.db import read_session
from ingest.store.models import Message, MessageStatus

STATUSES = (MessageStatus.QUARANTINED.value, MessageStatus.IGNORED.value)


def register_under(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``reprocess`` to the actions of ``messages`` (the listing commands call this)."""
    parser = actions.add_parser(
        "reprocess", help="run an ignored or quarantined message through the pipeline again"
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", type=int, help="the message id (see 'messages list')")
    target.add_argument("--status", choices=STATUSES, help="every message with this status")
    parser.set_defaults(handler=run_reprocess)


def run_reprocess(ctx: CommandContext) -> int:
    """Reprocess one message or all of a status; 1 if any could not be reprocessed."""
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
    with read_session(engine) as session:
        query = select(Message.id).where(Message.status == MessageStatus(status))
        return list(session.scalars(query.order_by(Message.id)))
