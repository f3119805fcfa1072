"""What the user sees when a command fails in a way no message foresaw: one line, and a report.

The traceback goes to a file under the state directory, never to the terminal,
so a bug neither floods the screen nor shows a secret a local variable held.
"""

from __future__ import annotations

import os
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

from ingest.cli.context import CommandContext

FALLBACK_STATE_DIR = Path(".ackmail")


def state_dir(context: CommandContext) -> Path:
    """The configured state directory when the settings loaded, else ./.ackmail."""
    settings = context.__dict__.get("settings")
    return settings.state_dir if settings is not None else FALLBACK_STATE_DIR


def report_crash(context: CommandContext, exc: BaseException) -> int:
    """Write ``exc``'s traceback to a report file, print one line naming it; exit status 1."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = state_dir(context) / "crash" / f"{stamp}-{os.getpid()}.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError as error:
        print(
            f"ackmail: internal error ({type(exc).__name__}); the report could not be written "
            f"to {path} ({error.strerror}); please report this bug",
            file=sys.stderr,
        )
        return 1
    print(
        f"ackmail: internal error ({type(exc).__name__}); the details are in {path}; "
        "please report this bug with that file",
        file=sys.stderr,
    )
    return 1


def silence_closed_pipe() -> int:
    """Exit quietly when stdout's reader went away (``ackmail requests list | head -1``)."""
    # Python would report the broken pipe again when it flushes stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1
