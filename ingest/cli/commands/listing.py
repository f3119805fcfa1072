"""``ackmail requests list``, ``acks list``, ``messages list``: the ack database for ops."""

from __future__ import annotations

import argparse

from ingest.cli.arguments import add_listing_options, page_of, positive_int, since
from ingest.cli.commands import reprocess
from ingest.cli.context import CommandContext
from ingest.cli.output import render
from ingest.parse.base import Intent, MessageKind
from ingest.store import queries
from ingest.store.db import read_session
from ingest.store.models import MessageStatus, RequestStatus


def _choices(
    enum_class: type[Intent] | type[MessageKind] | type[MessageStatus] | type[RequestStatus],
) -> list[str]:
    return [member.value for member in enum_class]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    requests = sub.add_parser("requests", help="requests awaiting or given a decision")
    list_requests = _list_parser(_actions(requests), "list requests, newest first")
    list_requests.add_argument("--status", choices=_choices(RequestStatus))
    list_requests.add_argument("--ref", metavar="GLOB", help="external reference, e.g. 'CR-*'")
    list_requests.add_argument(
        "--since", type=since, help="created within (24h, 7d) or after a date"
    )
    list_requests.set_defaults(handler=run_requests)

    acks = sub.add_parser("acks", help="recorded responses: who said what, when")
    list_acks = _list_parser(_actions(acks), "list responses, newest first")
    list_acks.add_argument("--since", type=since, help="received within (24h, 7d) or after a date")
    list_acks.add_argument("--intent", choices=_choices(Intent))
    list_acks.add_argument("--request", type=positive_int, metavar="ID")
    list_acks.add_argument("--mailbox", metavar="NAME")
    list_acks.set_defaults(handler=run_acks)

    messages = sub.add_parser("messages", help="every message seen, and why it was or was not used")
    message_actions = _actions(messages)
    list_messages = _list_parser(message_actions, "list messages, newest first")
    list_messages.add_argument("--status", choices=_choices(MessageStatus))
    list_messages.add_argument("--kind", choices=_choices(MessageKind))
    list_messages.add_argument("--mailbox", metavar="NAME")
    list_messages.add_argument(
        "--since", type=since, help="recorded within (24h, 7d) or after a date"
    )
    list_messages.set_defaults(handler=run_messages)
    reprocess.register_under(message_actions)


def _actions(
    parent: argparse.ArgumentParser,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return parent.add_subparsers(dest="action", metavar="ACTION", required=True)


def _list_parser(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], help_text: str
) -> argparse.ArgumentParser:
    parser = actions.add_parser("list", help=help_text)
    add_listing_options(parser)
    return parser


def run_requests(ctx: CommandContext) -> int:
    a = ctx.args
    with read_session(ctx.store()) as session:
        rows = queries.list_requests(
            session, status=a.status, ref=a.ref, since=a.since, page=page_of(a)
        )
    print(render(rows, queries.REQUEST_COLUMNS, a.format))
    return 0


def run_acks(ctx: CommandContext) -> int:
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


def run_messages(ctx: CommandContext) -> int:
    a = ctx.args
    with read_session(ctx.store()) as session:
        rows = queries.list_messages(
            session, status=a.status, mailbox=a.mailbox, kind=a.kind, since=a.since, page=page_of(a)
        )
    print(render(rows, queries.MESSAGE_COLUMNS, a.format))
    return 0
