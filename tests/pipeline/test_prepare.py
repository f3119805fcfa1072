"""The prepare stage: a new message is cut to its reply text only when it may answer."""

from __future__ import annotations

from ingest.parse.base import MessageKind
from ingest.parse.message import parse_message
from ingest.pipeline.prepare import prepare
from tests.pipeline.support import CONFIG


def _new_message(footer: str = "") -> bytes:
    return (
        "From: carol@example.test\r\nTo: approvals@example.test\r\nSubject: Budget\r\n"
        "Message-ID: <new.1@example.test>\r\nDate: Mon, 2 Nov 2026 10:04:00 +0000\r\n\r\n"
        f"Looks fine to me.\r\n\r\n> an older note\r\n> quoted\r\n{footer}"
    ).encode()


def test_a_new_message_without_a_token_is_not_cut_to_its_reply() -> None:
    prepared = prepare(_new_message(), CONFIG)
    assert (prepared.parsed.kind, prepared.parsed.tokens) == (MessageKind.NEW, ())
    assert prepared.parsed.reply_text == ""
    # Everything else is what a full parse gives.
    full = parse_message(_new_message(), CONFIG.parse)
    assert full.reply_text == "Looks fine to me."
    assert prepared.parsed.sender == full.sender and prepared.parsed.subject == full.subject


def test_a_new_message_with_a_token_gets_its_reply_text_as_a_full_parse_does() -> None:
    raw = _new_message("Ref: R7K2-9QXM\r\n")
    prepared = prepare(raw, CONFIG)
    assert [candidate.token for candidate in prepared.parsed.tokens] == ["R7K2-9QXM"]
    assert prepared.parsed == parse_message(raw, CONFIG.parse)
