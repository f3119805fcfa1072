"""``ackmail check [MAILBOX]``: the "Test" button, one line per step, the failed step named."""

from __future__ import annotations

import argparse

from ingest.cli.context import CommandContext


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "check", help="test a mailbox: connect, TLS, authenticate, open the folder, count")
    parser.add_argument("mailbox", nargs="?", help="the [[mailbox]] name (default: all)")
    parser.add_argument("--timeout", type=float, default=15.0, metavar="SECONDS",
                        help="network timeout per step (default 15)")
    parser.set_defaults(handler=run_check)


def run_check(ctx: CommandContext) -> int:
    """Check the named mailbox (or all); 1 when any step of any mailbox failed."""
    from ingest.app import token_providers
    from ingest.check import check_mailbox

    settings = ctx.settings
    boxes = [settings.mailbox(ctx.args.mailbox)] if ctx.args.mailbox else list(settings.mailboxes)
    if not boxes:
        print(f"{settings.path}: no [[mailbox]] is configured; add one to check it")
        return 1
    providers = token_providers(settings)
    failed = 0
    for box in boxes:
        report = check_mailbox(box, providers, timeout=ctx.args.timeout)
        print("\n".join(report.lines()), flush=True)
        failed += not report.ok
    return 1 if failed else 0
