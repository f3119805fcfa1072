"""UID FETCH of whole messages, read without imapclient's general response parser.

imapclient reads any FETCH response with a tokenizer that walks every byte outside
the literals in Python: for BODY.PEEK[] and INTERNALDATE that was about 65 us a
message, on the poller's connection thread, which shares the interpreter with the
thread that records. The answer to this one request has one shape on every server
(attributes, then the body as the message's one literal, then the closing
parenthesis), so it is read with two regular expressions (about 9 us). Whatever has
another shape (a quoted string or a literal besides INTERNALDATE and the body, an
unsolicited FETCH, attributes in an unexpected place) goes to imapclient's parser,
so the result is the same either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from imapclient import IMAPClient
from imapclient.response_parser import parse_fetch_response

FetchedMessage = dict[int, dict[bytes, Any]]  # by UID: b"BODY[]" and b"INTERNALDATE", where sent
_KEPT = (b"BODY[]", b"INTERNALDATE")

_ITEMS = "(BODY.PEEK[] INTERNALDATE)"
# "<seq> (<attributes> BODY[] {<size>}", up to the literal, which imaplib hands over apart.
_HEAD = re.compile(rb"\d+ \((?P<attributes>[^{\"]*(?:\"[^\"]*\"[^{\"]*)?)BODY\[\] \{\d+\}\Z")
_UID = re.compile(rb"(?:^| )UID (\d+)(?= |\Z)")
_DATE = re.compile(rb'(?:^| )INTERNALDATE "([ \d]\d)-([A-Z][a-z]{2})-(\d{4}) (\d\d):(\d\d):(\d\d) '
                   rb'([-+])(\d\d)(\d\d)"')
_MONTHS = {name: number for number, name in enumerate(
    (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
     b"Dec"), start=1)}


def fetch_messages(client: IMAPClient, uids: Sequence[int]) -> FetchedMessage:
    """The bytes and INTERNALDATE of each of ``uids`` (BODY.PEEK: nothing is marked read);
    a message expunged meanwhile is absent. Raises imapclient's errors, as its fetch does."""
    message_set = ",".join(str(uid) for uid in uids)
    status, data = client._imap.uid("FETCH", message_set, _ITEMS)
    if status != "OK":
        raise client.Error(f"FETCH failed: {data!r}")
    wanted = set(uids)
    fetched = read_response(data)
    return {uid: items for uid, items in fetched.items() if uid in wanted}


def read_response(data: list[Any]) -> FetchedMessage:
    """imaplib's FETCH response: the body and INTERNALDATE of each message, as imapclient
    reads them (UIDs as keys, each date in its own zone)."""
    fetched = _read_simple(data)
    if fetched is not None:
        return fetched
    return {uid: {key: items[key] for key in _KEPT if key in items}
            for uid, items in parse_fetch_response(data, False, True).items()}


def _read_simple(data: list[Any]) -> FetchedMessage | None:
    """The response when every message has the one expected shape, else None."""
    fetched: FetchedMessage = {}
    parts: Iterator[Any] = iter(data)
    for part in parts:
        if not isinstance(part, tuple) or next(parts, None) != b")":
            return None
        head, body = part
        matched = _HEAD.match(head)
        if matched is None:
            return None
        attributes = matched["attributes"]
        uid = _UID.search(attributes)
        date = _DATE.search(attributes)
        if uid is None or (b'"' in attributes and date is None):
            return None
        items: dict[bytes, Any] = {b"BODY[]": body}
        if date is not None:
            items[b"INTERNALDATE"] = _internal_date(date)
        fetched[int(uid[1])] = items
    return fetched


def _internal_date(found: re.Match[bytes]) -> datetime | None:
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = found.groups()
    offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
    try:
        return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute),
                        int(second), tzinfo=timezone(-offset if sign == b"-" else offset))
    except (KeyError, ValueError):  # as imapclient: a date that cannot be read is left out
        return None
