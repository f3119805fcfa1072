"""The ``ackmail`` command: parses arguments, runs one command, turns errors into one sentence.

Exit status: 0 on success, 1 on a failure the message explains, 2 on bad usage
(argparse). The pieces commands run are composed in ``ingest.app``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ingest import __version__
from ingest.cli.commands import COMMANDS
from ingest.cli.context import CommandContext
from ingest.cli.crash import report_crash, silence_closed_pipe
from ingest.errors import AckmailError
from ingest.logs import FORMATS, configure_logging


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with one sub-command per registered command module."""
    parser = argparse.ArgumentParser(
        prog="ackmail",
        description="Turn email replies (APPROVE, ack) into recorded decisions.",
    )
    parser.add_argument("--version", action="version", version=f"ackmail {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $ACKMAIL_CONFIG, else ./ackmail.toml)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default="text",
        help="log lines as text (default) or one JSON object per line",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(verbose=args.verbose, fmt=args.log_format)
    context = CommandContext(args)
    try:
        return int(args.handler(context) or 0)
    except AckmailError as exc:
        print(f"ackmail: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ackmail: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return silence_closed_pipe()
    except Exception as exc:
        return report_crash(context, exc)
    finally:
        context.close()
