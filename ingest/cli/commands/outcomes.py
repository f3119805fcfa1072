"""``ackmail outcomes list`` and ``ackmail outcomes retry ID``: the dispatch outbox."""

from __future__ import annotations

import argparse

from ingest.cli.arguments import add_listing_options, choices, positive_int
from ingest.cli.context import CommandContext
from ingest.cli.output import render
from ingest.store.statuses import OutcomeStatus


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("outcomes", help="the dispatch outbox: delivered, waiting, dead")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list outcomes, newest first")
    add_listing_options(listing)
    listing.add_argument("--status", choices=choices(OutcomeStatus))
    listing.set_defaults(handler=run_list)
    retry = actions.add_parser("retry", help="send a dead outcome again")
    retry.add_argument("id", type=positive_int, metavar="ID")
    retry.set_defaults(handler=run_retry)


def run_list(ctx: CommandContext) -> int:
    from ingest.store.db import read_session
    from rules.outbox import OUTCOME_COLUMNS, list_outcomes

    a = ctx.args
    with read_session(ctx.store()) as session:
        rows = list_outcomes(session, status=a.status, limit=a.limit, offset=a.offset)
    print(render(rows, OUTCOME_COLUMNS, a.format))
    return 0


def run_retry(ctx: CommandContext) -> int:
    from rules.outbox import retry_outcome

    retry_outcome(ctx.store(), ctx.args.id)
    print(f"outcome #{ctx.args.id} is pending again; 'ackmail dispatch' delivers it")
    return 0
