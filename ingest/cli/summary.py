"""The summary ``poll --once`` (and ``demo``) print: one line per mailbox."""

from __future__ import annotations

from ingest.poller.service import MailboxSummary, PollSummary


def format_summary(summary: PollSummary, *, dry_run: bool = False) -> str:
    """One line per mailbox: the counts and the time taken, or the error it ended with."""
    width = max(len(box.mailbox) for box in summary.mailboxes)
    lines = ["dry run: nothing was recorded, moved or dispatched"] if dry_run else []
    lines += [_summary_line(box, width) for box in summary.mailboxes]
    return "\n".join(lines)


def _summary_line(box: MailboxSummary, width: int) -> str:
    if box.held_by:
        return f"{box.mailbox:<{width}}  left to poller {box.held_by}, which holds its lease"
    counts = (f"{box.processed} processed, {box.ignored} ignored, "
              f"{box.quarantined} quarantined, {box.duplicates} duplicates "
              f"in {box.elapsed_seconds:.1f} s")
    if box.error:
        return f"{box.mailbox:<{width}}  FAILED ({counts}): {box.error}"
    return f"{box.mailbox:<{width}}  {counts}"
