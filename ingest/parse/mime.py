"""Raw bytes -> ``DecodedMessage``: headers, ids, subject, date, recipients, body text.

Speed and safety decide the shape of this module:
- Structure and bodies come from the cheap ``compat32`` parser (~10x faster than
  ``policy.default`` here); the strict modern header classes are used only where
  strictness pays: encoded-word headers (html_text.py), the From check (sender.py).
- ``ParseLimits`` are checked before the expensive work (``limits``), then on the
  parsed tree exactly.
- The parser compiles a regex for every multipart boundary it meets (~250 us, more
  than the rest of a reply's parse); boundaries are random, so ``re``'s cache never
  hits. The top-level boundary is renamed to a fixed token before parsing (and the
  header restored after), which makes that compile a cache hit.
- ``read_message`` never raises: a limit, bytes that are not a message, or a parser
  failure becomes ``problem``, one sentence fit to store as a quarantine reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from functools import lru_cache

from ingest.parse.base import ParseLimits
from ingest.parse.headers import HeaderView
from ingest.parse.html_text import child_parts, header_str, read_body
from ingest.parse.limits import (
    BOUNDARY_PARAM,
    HEADER_START,
    depth_problem,
    envelope_problem,
    parts_problem,
    structure_estimate_problem,
)
from ingest.timeutil import as_utc

_PARSER = BytesParser(policy=policy.compat32)
_HEADER_PARSER = BytesHeaderParser(policy=policy.compat32)
_DEFAULT_LIMITS = ParseLimits()

_HEADER_LINE = re.compile(rb"^[^ \t\r\n]", re.MULTILINE)
# The lines the parser takes as headers (email.feedparser's headerRE); the body starts at
# the next line, which is blank or not (a header block may end without the blank line).
_HEADER_BLOCK = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[ \t])[^\n]*(?:\n|\Z))*")
_CONTENT_TYPE_HEADER = re.compile(
    rb"^content-type:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)
_DASH_LINE = re.compile(rb"^--[^\r\n]*", re.MULTILINE)
_CANONICAL_BOUNDARY = "=_ackmail_top_boundary_="
_MSG_ID = re.compile(r"<([^<>]+)>")

RECIPIENT_HEADERS = ("to", "cc", "delivered-to", "x-original-to")
_DELIVERY_STATUS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_DISPOSITION = frozenset(
    {"message/disposition-notification", "message/global-disposition-notification"})
# Parts whose children the parser makes from field blocks, not MIME parts.
_REPORT_BLOCKS = _DELIVERY_STATUS | _DISPOSITION


@dataclass(frozen=True)
class MimeSummary:
    """What the kind classifier needs to know about the MIME tree."""

    content_type: str = "text/plain"
    report_type: str | None = None
    has_delivery_status: bool = False
    has_disposition_notification: bool = False
    part_count: int = 0
    depth: int = 0


@dataclass(frozen=True)
class DecodedMessage:
    """One message, decoded; when ``problem`` is set only the headers may be filled."""

    headers: HeaderView = field(default_factory=HeaderView)
    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    subject: str = ""
    date: datetime | None = None
    recipients: tuple[str, ...] = ()
    body_text: str = ""
    body_is_html: bool = False
    structure: MimeSummary = field(default_factory=MimeSummary)
    defects: tuple[str, ...] = ()
    problem: str | None = None
    size: int = 0


def read_message(raw: bytes, limits: ParseLimits = _DEFAULT_LIMITS) -> DecodedMessage:
    """Decode ``raw`` within ``limits``; never raises, reports trouble in ``problem``."""
    try:
        return _read(raw, limits)
    except RecursionError:
        return DecodedMessage(problem="message nests parts too deeply for the parser to "
                              f"follow, over the {limits.max_depth}-level limit", size=len(raw))
    except Exception as exc:  # the contract is "never raise": a parser bug is quarantined
        return DecodedMessage(problem=f"message could not be parsed ({type(exc).__name__}); "
                              "it is kept for inspection", size=len(raw))


def _read(raw: bytes, limits: ParseLimits) -> DecodedMessage:
    header_end = _header_end(raw)
    header_count = len(_HEADER_LINE.findall(raw, 0, header_end))
    problem = (envelope_problem(raw, header_count, limits)
               or structure_estimate_problem(raw, limits))
    if problem is not None:
        readable = (HEADER_START.match(raw) is not None and header_end <= limits.max_bytes
                    and header_count <= limits.max_headers)
        items = _header_items(_HEADER_PARSER.parsebytes(raw[:header_end])) if readable else ()
        return _problem_message(raw, problem, HeaderView.of(items))
    root = _parse(raw, header_end)
    summary, defects, problem = _survey(root, limits)
    headers = HeaderView.of(_header_items(root))
    if problem is not None:
        return _problem_message(raw, problem, headers)
    body, is_html, body_defects = read_body(root, limits)
    date_value = headers.raw("date")
    date = _date(date_value)
    if date_value and date is None:
        body_defects.append("unreadable Date header")
    return DecodedMessage(
        headers=headers,
        message_id=_first_id(headers.raw("message-id")),
        in_reply_to=_first_id(headers.raw("in-reply-to")),
        references=_all_ids(headers.raw_all("references")),
        subject=headers.get("subject") or "",
        date=date,
        recipients=_recipients(headers),
        body_text=body,
        body_is_html=is_html,
        structure=summary,
        defects=tuple(dict.fromkeys((*defects, *body_defects))),
        size=len(raw),
    )


def _parse(raw: bytes, header_end: int) -> Message:
    """The compat32 parse, with the top-level boundary renamed when that is safe."""
    simple = _single_part(raw, header_end)
    if simple is not None:
        return simple
    renamed, original = _rename_top_boundary(raw, header_end)
    if original is None:
        return _PARSER.parsebytes(raw)
    root = _PARSER.parsebytes(renamed)
    if root.get_boundary() != _CANONICAL_BOUNDARY:
        return _PARSER.parsebytes(raw)  # the parser saw other headers than we did
    name, value = next((n, v) for n, v in root.raw_items() if n.lower() == "content-type")
    root.replace_header(name, value.replace(_CANONICAL_BOUNDARY, original))
    return root


def _single_part(raw: bytes, header_end: int) -> Message | None:
    """The tree the parser would build for a plain one-part message, built directly.

    Plain-text replies (mobile clients, alerting tools, ackmail's own tests) are one
    text part; the parser reads those line by line (a third of such a reply's parse).
    Taken only where the parser would find nothing to remark on: no lone CRs, an
    envelope "From " line, a malformed header line or a missing blank line before the
    body; a multipart (mail clients' multipart/alternative replies) or message/* type
    goes to the parser.
    """
    block = raw[:header_end]
    if (not block.endswith((b"\n\n", b"\n\r\n")) or raw.startswith((b"From ", b" ", b"\t"))
            or raw.count(b"\r") != raw.count(b"\r\n")):
        return None
    text = block.decode("ascii", "surrogateescape")
    message = Message()
    fields: list[list[str]] = []
    for line in text.splitlines(keepends=True)[:-1]:  # the last is the blank line
        if line[0] in " \t":
            fields[-1].append(line)
        elif line.find(":") > 0:
            fields.append([line])
        else:
            return None
    for lines in fields:
        message.set_raw(*policy.compat32.header_source_parse(lines))
    if message.get_content_maintype() in ("multipart", "message"):
        return None
    message.set_payload(raw[header_end:].decode("ascii", "surrogateescape"))
    return message


def _rename_top_boundary(raw: bytes, header_end: int) -> tuple[bytes, str | None]:
    """``raw`` with the top multipart's boundary (param and delimiter lines) renamed.

    Only delimiter lines change, and the parser consumes those, so the text it
    reads is the same. Returns the original parameter text, or None when skipped.
    """
    header = _CONTENT_TYPE_HEADER.search(raw, 0, header_end)
    media_type = header.group(1).split(b";")[0].strip().lower() if header else b""
    param = BOUNDARY_PARAM.search(header.group(1)) if header else None
    canonical = _CANONICAL_BOUNDARY.encode()
    if (header is None or param is None or not media_type.startswith(b"multipart/")
            or canonical in raw or raw.count(b"\r") != raw.count(b"\r\n")):
        return raw, None  # lone CRs end lines for the parser but not for _DASH_LINE
    group = 1 if param.group(1) is not None else 2
    boundary = param.group(group).rstrip()
    pieces = [raw[:header.start(1) + param.start(group)], canonical]
    last = header.start(1) + param.end(group)
    for line in _DASH_LINE.finditer(raw, header_end):
        text = line.group()
        if text[2:].startswith(boundary) and text[2 + len(boundary):].rstrip() in (b"", b"--"):
            pieces += [raw[last:line.start() + 2], canonical]
            last = line.start() + 2 + len(boundary)
    pieces.append(raw[last:])
    return b"".join(pieces), param.group(group).decode("ascii", "surrogateescape")


def _problem_message(raw: bytes, problem: str, headers: HeaderView) -> DecodedMessage:
    """A message we refuse to read further; its ids and subject still go on the record."""
    return DecodedMessage(headers=headers, message_id=_first_id(headers.raw("message-id")),
                          subject=headers.get("subject") or "", problem=problem, size=len(raw))


def _header_end(raw: bytes) -> int:
    """Where the parser starts the body: past a blank line, or at a line that is no header."""
    block = _HEADER_BLOCK.match(raw)
    end = block.end() if block else 0
    blank = next((line for line in (b"\n", b"\r\n") if raw.startswith(line, end)), b"")
    return end + len(blank)


def _survey(root: Message, limits: ParseLimits) -> tuple[MimeSummary, list[str], str | None]:
    """Walk the parsed tree once (iteratively): exact limits, report parts, defects."""
    defects: list[str] = []
    count = deepest = 0
    found: set[str] = set()
    root_type = root.get_content_type()
    stack: list[tuple[Message, int, bool]] = [(root, 0, False)]
    while stack:
        part, depth, encapsulated = stack.pop()
        count, deepest = count + 1, max(deepest, depth)
        if count > limits.max_parts:
            return MimeSummary(), defects, parts_problem(limits)
        if depth > limits.max_depth:
            return MimeSummary(), defects, depth_problem(limits)
        if len(part) > limits.max_headers:
            return MimeSummary(), defects, (
                f"a MIME part has {len(part):,} headers, over the {limits.max_headers:,}-header "
                "limit (raise [limits] max_headers to accept it)")
        defects.extend(type(defect).__name__ for defect in part.defects)
        content_type = part.get_content_type()
        if not encapsulated:  # a forwarded bounce inside a reply does not make it a bounce
            found.add(content_type)
        if content_type in _REPORT_BLOCKS or not part.is_multipart():
            continue
        inner = encapsulated or content_type.startswith("message/")
        stack.extend((child, depth + 1, inner) for child in reversed(child_parts(part)))
    report_type = root.get_param("report-type") if root_type == "multipart/report" else None
    summary = MimeSummary(
        content_type=root_type,
        report_type=report_type.lower() if isinstance(report_type, str) else None,
        has_delivery_status=not found.isdisjoint(_DELIVERY_STATUS),
        has_disposition_notification=not found.isdisjoint(_DISPOSITION),
        part_count=count, depth=deepest)
    return summary, defects, None


def _header_items(message: Message) -> tuple[tuple[str, str], ...]:
    return tuple((name, header_str(value)) for name, value in message.raw_items())


def _ids(value: str) -> Iterator[str]:
    found = _MSG_ID.findall(value)
    if not found and "@" in value and len(value.split()) == 1:
        found = [value]  # some clients drop the angle brackets
    for item in found:
        yield "<" + "".join(item.split()) + ">"


def _first_id(value: str | None) -> str | None:
    return next(_ids(value), None) if value else None


def _all_ids(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for value in values for item in _ids(value)))


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return as_utc(parsedate_to_datetime(value))
    except (ValueError, TypeError, IndexError, OverflowError):
        return None


def _recipients(headers: HeaderView) -> tuple[str, ...]:
    """Lower-cased addresses we were sent to; lenient parsing is enough to route a reply."""
    return _addresses(tuple(value for name in RECIPIENT_HEADERS for value in headers.raw_all(name)))


# Recipient headers repeat (the mailbox's own address), and parsing them costs more than
# the rest of the headers: remember recent answers (a pure function).
@lru_cache(maxsize=4096)
def _addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    found = (address.lower() for _, address in getaddresses(values) if "@" in address)
    return tuple(dict.fromkeys(found))
