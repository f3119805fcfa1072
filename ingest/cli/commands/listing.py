"""``ackmail requests list`` and ``acks list``: the ack database for ops."""

from __future__ import annotations

import argparse

from ingest.cli.arguments import actions_of, choices, list_parser, page_of, positive_int, since
from ingest.cli.context import CommandContext
from ingest.cli.output import render
from ingest.parse.base import Intent
from ingest.store.statuses import RequestStatus


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    requests = sub.add_parser("requests", help="requests awaiting or given a decision")
    list_requests = list_parser(actions_of(requests), "list requests, newest first")
    list_requests.add_argument("--status", choices=choices(RequestStatus))
    list_requests.add_argument("--ref", metavar="GLOB", help="external reference, e.g. 'CR-*'")
    list_requests.add_argument(
        "--since", type=since, help="created within (24h, 7d) or after a date"
    )
    list_requests.set_defaults(handler=run_requests)

    acks = sub.add_parser("acks", help="recorded responses: who said what, when")
    list_acks = list_parser(actions_of(acks), "list responses, newest first")
    list_acks.add_argument("--since", type=since, help="received within (24h, 7d) or after a date")
    list_acks.add_argument("--intent", choices=choices(Intent))
    list_acks.add_argument("--request", type=positive_int, metavar="ID")
    list_acks.add_argument("--mailbox", metavar="NAME")
    list_acks.set_defaults(handler=run_acks)


def run_requests(ctx: CommandContext) -> int:
    from ingest.store import queries
    from ingest.store.db import read_session

    a = ctx.args
    with read_session(ctx.store()) as session:
        rows = queries.list_requests(
            session, status=a.status, ref=a.ref, since=a.since, page=page_of(a)
        )
    print(render(rows, queries.REQUEST_COLUMNS, a.format))
    return 0


def run_acks(ctx: CommandContext) -> int:
    from ingest.store import queries
    from ingest.store.db import read_session

    a = ctx.args
    with read_session(ctx.store()) as session:
        rows = queries.list_responses(
            session,
            since=a.since,
            intent=a.intent,
            request_id=a.request,
            mailbox=a.mailbox,
            page=page_of(a),
        )
    print(render(rows, queries.RESPONSE_COLUMNS, a.format))
    return 0
