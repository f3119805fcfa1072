"""Argument types and option groups shared by several commands."""

from __future__ import annotations

import argparse
import enum
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from ingest.cli.output import FORMATS
from ingest.timeutil import as_utc, parse_duration, utcnow

if TYPE_CHECKING:
    from ingest.store.queries import Page

# The largest row count or offset the databases take (a signed 32-bit integer).
MAX_COUNT = 2**31 - 1


def since(text: str) -> datetime:
    """``--since``: a duration back from now (``24h``, ``7d``) or an ISO date/time.

    A date/time without a zone is taken as UTC.
    """
    try:
        return utcnow() - parse_duration(text)
    except ValueError:
        pass
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is neither a duration (24h, 7d) nor a date (2026-11-01 or 2026-11-01T08:00)"
        ) from None


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return _whole_number(text, least=1)


def non_negative_int(text: str) -> int:
    """A whole number >= 0."""
    return _whole_number(text, least=0)


def _whole_number(text: str, *, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} must be {least} or more")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{value} is too large; the most is {MAX_COUNT}")
    return value


def add_listing_options(parser: argparse.ArgumentParser) -> None:
    """``--format``, ``--limit``, ``--offset`` for every list command."""
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument(
        "--limit", type=positive_int, default=100, help="rows per page (default 100)"
    )
    parser.add_argument("--offset", type=non_negative_int, default=0, help="rows to skip (paging)")


def page_of(args: argparse.Namespace) -> Page:
    """The paging options as a Page."""
    from ingest.store.queries import Page

    return Page(limit=args.limit, offset=args.offset)


def choices(values: Iterable[enum.Enum]) -> list[str]:
    """The values of an enum, as an option's choices."""
    return [str(member.value) for member in values]


def actions_of(
    parent: argparse.ArgumentParser,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The required ACTION sub-commands of a command (``list``, ``retry``...)."""
    return parent.add_subparsers(dest="action", metavar="ACTION", required=True)


def list_parser(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], help_text: str
) -> argparse.ArgumentParser:
    """A ``list`` action with the listing options."""
    parser = actions.add_parser("list", help=help_text)
    add_listing_options(parser)
    return parser
