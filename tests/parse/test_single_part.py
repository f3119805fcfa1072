"""The one-part shortcut in mime.py builds exactly the tree the standard parser builds."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from ingest.parse.mime import _header_end, _single_part
from tests.parse.fuzz_targets import parser_tree as tree
from tests.sources.mail import reply, unrelated

_PARSER = BytesParser(policy=policy.compat32)
_TESTS = Path(__file__).resolve().parents[1]
# Every stored message: the reply corpus, and what the fuzzer found.
STORED = sorted([*(_TESTS / "corpus" / "messages").glob("*.eml"),
                 *(p for p in (_TESTS / "parse" / "fuzz_corpus").rglob("*") if p.is_file())])
HANDMADE = {
    "plain": b"From: a@example.test\r\nSubject: Re: x\r\n\r\nApproved.\r\n",
    "folded": b"From: a@example.test\r\nSubject: Re: a\r\n  long\r\n\tsubject\r\n\r\nok\r\n",
    "LF only": b"From: a@example.test\nTo: b@example.test\n\nok\n",
    "8-bit": "From: Zoë <z@example.test>\r\nSubject: café\r\n\r\nJa, genehmigt – ok\r\n".encode(),
    "quoted-printable": (b"From: a@example.test\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 ok\r\n"),
    "empty body": b"From: a@example.test\r\nSubject: x\r\n\r\n",
    "colon in value": b"From: a@example.test\r\nX-Note: a: b: c\r\n\r\nok\r\n",
    "bench reply": reply("TKN1-ABCD"),
    "bench new": unrelated("x "),
}
# What the parser remarks on, or reads as more than one part: left to the parser.
DECLINED = {
    "multipart": (b"From: a@example.test\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                  b"--b\r\n\r\nok\r\n--b--\r\n"),
    "message/rfc822": (b"From: a@example.test\r\nContent-Type: message/rfc822\r\n\r\n"
                       b"Subject: inner\r\n\r\nok\r\n"),
    "envelope line": b"From a@example.test Mon Nov  2 10:00:00 2026\r\nSubject: x\r\n\r\nok\r\n",
    "lone CR": b"From: a@example.test\rSubject: x\r\n\r\nok\r\n",
    "continuation first": b" From: a@example.test\r\n\r\nok\r\n",
    "empty header name": b"From: a@example.test\r\n: x\r\n\r\nok\r\n",
    "no blank line": b"From: a@example.test\r\nthis is no header\r\n",
    "headers only": b"From: a@example.test\r\nSubject: x",
}


@pytest.mark.parametrize("name", sorted(HANDMADE))
def test_a_one_part_message_gets_the_parsers_tree(name: str) -> None:
    raw = HANDMADE[name]
    built = _single_part(raw, _header_end(raw))
    assert built is not None, "the shortcut declined a plain one-part message"
    assert tree(built) == tree(_PARSER.parsebytes(raw))


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_what_the_parser_remarks_on_is_left_to_it(name: str) -> None:
    raw = DECLINED[name]
    assert _single_part(raw, _header_end(raw)) is None


def test_every_stored_message_the_shortcut_takes_gets_the_parsers_tree() -> None:
    taken = 0
    for path in STORED:
        raw = path.read_bytes()
        built = _single_part(raw, _header_end(raw))
        if built is not None:
            taken += 1
            assert tree(built) == tree(_PARSER.parsebytes(raw)), path.name
    assert taken >= 40, f"the shortcut took only {taken} of {len(STORED)} stored messages"
