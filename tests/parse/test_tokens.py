"""Finding tokens in headers, plus-addresses, subject tags and footers, in trust order."""

from __future__ import annotations

import pytest

from ingest.parse.base import (
    Intent,
    MessageKind,
    ParsedMessage,
    SenderInfo,
    TokenCandidate,
    TokenSource,
)
from ingest.parse.tokens import find_tokens, message_id_for


def parsed(
    *,
    in_reply_to: str | None = None,
    references: tuple[str, ...] = (),
    recipients: tuple[str, ...] = (),
    subject: str = "",
    body: str = "",
) -> ParsedMessage:
    return ParsedMessage(
        message_id="<x@test>",
        in_reply_to=in_reply_to,
        references=references,
        subject=subject,
        sender=SenderInfo("alice@example.test"),
        recipients=recipients,
        date=None,
        kind=MessageKind.REPLY,
        body_text=body,
        reply_text="",
        intent=Intent.UNKNOWN,
    )


def test_all_four_places_in_trust_order() -> None:
    message = parsed(
        in_reply_to=message_id_for("AAAA-1111", "5f3a", "example.test"),
        recipients=("approvals+bbbb-2222@example.test",),
        subject="Re: Expense claim [CCCC-3333]",
        body="Approved\n\n> Please approve.\n> Ref: DDDD-4444\n",
    )
    assert find_tokens(message, reply_address="approvals@example.test") == [
        TokenCandidate("AAAA-1111", TokenSource.HEADERS),
        TokenCandidate("BBBB-2222", TokenSource.PLUS_ADDRESS),
        TokenCandidate("CCCC-3333", TokenSource.SUBJECT),
        TokenCandidate("DDDD-4444", TokenSource.FOOTER),
    ]


def test_references_chain_and_duplicates() -> None:
    mid = message_id_for("AAAA-1111", "5f3a", "example.test")
    message = parsed(in_reply_to=mid, references=("<other@x>", mid), subject="Re: [aaaa-1111]")
    assert find_tokens(message) == [
        TokenCandidate("AAAA-1111", TokenSource.HEADERS),
        TokenCandidate("AAAA-1111", TokenSource.SUBJECT),
    ]


def test_plus_address_only_on_the_reply_address() -> None:
    message = parsed(recipients=("someone+AAAA-1111@example.test", "approvals@example.test"))
    assert find_tokens(message, reply_address="approvals@example.test") == []
    assert find_tokens(message)[0] == TokenCandidate("AAAA-1111", TokenSource.PLUS_ADDRESS)


def test_words_that_look_like_tokens_are_not_taken() -> None:
    message = parsed(subject="Re: REJECTED approval needed", body="REJECTED\nRef: nothing here\n")
    assert find_tokens(message) == []


def test_footer_inside_nested_quotes() -> None:
    message = parsed(body="ok\n>> Ref: AAAA-1111\n")
    assert find_tokens(message) == [TokenCandidate("AAAA-1111", TokenSource.FOOTER)]


@pytest.mark.parametrize("line", ["REF: AAAA-1111", "ref:AAAA-1111", "> > Ref:  aaaa-1111"])
def test_a_footer_is_found_whatever_the_case_of_ref(line: str) -> None:
    found = find_tokens(parsed(body=f"Fine by me.\n\n{line}\n"))
    assert found == [TokenCandidate("AAAA-1111", TokenSource.FOOTER)]
