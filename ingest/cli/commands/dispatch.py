"""``ackmail dispatch [--once]``: events through the rules, outcomes to their actions.

Each round first runs the request expiry sweep (``ingest.store.expiry``), then turns
new events into outcomes and delivers every outcome that is due. ``--once``
drains what is due now and exits; otherwise rounds repeat until interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ingest.cli.context import CommandContext


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("dispatch", help="run the rules and deliver pending outcomes")
    parser.add_argument("--once", action="store_true", help="drain what is due now, then exit")
    parser.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                        help="rest between rounds (default 2)")
    parser.set_defaults(handler=run_dispatch)


def run_dispatch(ctx: CommandContext) -> int:
    from ingest.app import dispatcher as build_dispatcher

    dispatcher = build_dispatcher(ctx.settings, ctx.store(), ctx.args.interval)
    if ctx.args.once:
        tally = dispatcher.run_once()
        print(f"{tally}; requests expired: {tally.housekeeping}")
        if tally.dead:
            print(f"ackmail: {tally.dead} outcome(s) failed for good; see 'ackmail outcomes "
                  "list --status dead', fix the cause, then 'ackmail outcomes retry ID'",
                  file=sys.stderr)
            return 1
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    dispatcher.run_forever(stop)
    return 0
