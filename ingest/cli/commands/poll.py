"""``ackmail poll [--once] [--mailbox NAME] [--dry-run] [--from DATE]``: the main job."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ingest.cli.arguments import since
from ingest.cli.context import CommandContext

if TYPE_CHECKING:
    from tqdm import tqdm

    from ingest.pipeline import Processed
    from ingest.poller.upkeep import Task
    from ingest.sources.base import SourceRef

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "poll", help="watch the mailboxes (IDLE or polling) and record every new message")
    parser.add_argument("--once", action="store_true",
                        help="drain what is there, print a summary and exit")
    parser.add_argument("--mailbox", action="append", default=[], metavar="NAME",
                        help="poll only this [[mailbox]] (repeat for more)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would happen to each message; record, move and "
                             "dispatch nothing (implies --once)")
    parser.add_argument("--from", dest="backlog_from", type=since, metavar="DATE",
                        help="mail that arrived before DATE is old mail, acted on only if it "
                             "answers a request (default: when the mailbox was first watched)")
    parser.add_argument("--no-dispatch", action="store_true",
                        help="leave the rules and delivery to a separate 'ackmail dispatch'")
    parser.set_defaults(handler=run_poll_and_dispatch)


def run_poll_and_dispatch(ctx: CommandContext) -> int:
    """The poller, with the dispatcher (rules, delivery, expiry sweep) as its background task."""
    from ingest.app import dispatcher

    if ctx.args.dry_run or ctx.args.no_dispatch:
        return run_poll(ctx)
    if ctx.settings.rules_file is None:
        log.warning("no [rules] file is configured: events wait in the outbox until one is")
        return run_poll(ctx)
    return run_poll(ctx, background=(dispatcher(ctx.settings, ctx.store()).run_once,))


def run_poll(ctx: CommandContext, background: Sequence[Task] = ()) -> int:
    """Poll until SIGTERM/SIGINT (or drained, with --once); 1 if a mailbox failed."""
    from ingest.app import poller as build_poller
    from ingest.cli.summary import format_summary
    from ingest.poller.service import PollOptions, stop_on_signals

    args = ctx.args
    options = PollOptions(once=args.once or args.dry_run, dry_run=args.dry_run,
                          backlog_from=args.backlog_from, mailboxes=tuple(args.mailbox))
    progress = Progress() if options.once and not args.dry_run and sys.stderr.isatty() else None
    poller = build_poller(ctx.settings, ctx.store(), options, background=background,
                          report=show_result if args.dry_run else progress)
    try:
        with stop_on_signals(poller.stop):
            summary = poller.run()
    finally:
        if progress is not None:
            progress.close()
    print(format_summary(summary, dry_run=args.dry_run))
    return 1 if summary.failed else 0


class Progress:
    """A live count per mailbox on a terminal while ``poll --once`` drains a backlog.

    The per-message log lines are for services; on a terminal they would tear the
    bars, so the pipeline's are held back to warnings while the bars are shown.
    """

    def __init__(self) -> None:
        self.bars: dict[str, tqdm[None]] = {}
        self.lock = threading.Lock()
        self.pipeline_log = logging.getLogger("ingest.pipeline")
        self.level = self.pipeline_log.level
        self.pipeline_log.setLevel(logging.WARNING)

    def __call__(self, mailbox: str, ref: SourceRef, result: Processed) -> None:
        from tqdm import tqdm

        with self.lock:
            if mailbox not in self.bars:
                self.bars[mailbox] = tqdm(desc=mailbox, unit=" msg", position=len(self.bars),
                                          file=sys.stderr)
            self.bars[mailbox].update(1)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.pipeline_log.setLevel(self.level)


def show_result(mailbox: str, ref: SourceRef, result: Processed) -> None:
    """A dry run's line per message: what would become of it, and why."""
    outcome = f"would be {result.status}" if result.status else "already recorded"
    print(f"{mailbox}  {ref.source_key}  {outcome}: {result.reason}", flush=True)
