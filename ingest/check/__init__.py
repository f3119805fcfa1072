"""``ackmail check``: a mailbox tested step by step, as configured now.

mailbox.py holds the steps of an IMAP or POP3 mailbox and the check itself, graph.py the
steps of a Microsoft Graph mailbox, base.py what both share (a probe, a step's result).
"""

from ingest.check.base import CheckReport
from ingest.check.mailbox import check_mailbox

__all__ = ["CheckReport", "check_mailbox"]
