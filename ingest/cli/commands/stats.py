"""``ackmail stats``: the health of the whole installation in one screen."""

from __future__ import annotations

import argparse
from typing import Any

from ingest.cli.context import CommandContext
from ingest.cli.output import render, to_json
from ingest.timeutil import isoformat_z


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("stats", help="counts per mailbox and status, poll lag, backlog")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run_stats)


def run_stats(ctx: CommandContext) -> int:
    from ingest.store import queries
    from ingest.store.db import read_session

    with read_session(ctx.store()) as session:
        report = queries.stats(session)
    print(to_json(report) if ctx.args.format == "json" else _as_text(report))
    return 0


def _as_text(report: dict[str, Any]) -> str:
    requests = ", ".join(f"{k}: {v}" for k, v in sorted(report["requests"].items())) or "none"
    outbox = ", ".join(f"{k}: {v}" for k, v in report["outbox"].items())
    oldest = isoformat_z(report["oldest_pending_request_at"]) or "none pending"
    return "\n".join(
        [
            "Messages per mailbox and status",
            render(report["messages"], ("mailbox", "status", "count"), "table"),
            "",
            "Mailboxes (the poller holding each, last successful poll)",
            render(
                report["mailboxes"],
                ("mailbox", "folder", "holder", "last_success_at", "lag_seconds", "last_error"),
                "table",
            ),
            "",
            f"Requests: {requests}",
            f"Oldest pending request: {oldest}",
            f"Outbox: {outbox}; events not yet through the rules: {report['events_unprocessed']}",
        ]
    )
