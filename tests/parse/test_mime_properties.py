"""Property tests: read_message, classify_kind and check_sender on generated input.

Three generators: arbitrary bytes; arbitrary bytes behind a valid header; and MIME
trees (nested multiparts, charsets real and bogus, transfer encodings, tricky From
values). Every example must finish within the time bound without raising, and end
as either a problem sentence or a parsed message. Well-formed trees are also checked
against an oracle: the part count and depth we report, and the body part that
``EmailMessage.get_body(("plain", "html"))`` picks.
"""

from __future__ import annotations

import base64
import codecs
import itertools
import quopri
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.parse.base import MessageKind, ParseLimits
from ingest.parse.kind import classify_kind
from ingest.parse.mime import DecodedMessage, read_message
from ingest.parse.sender import check_sender

SECONDS = 2.0
SETTINGS = settings(max_examples=200, deadline=None)
LIMITS = ParseLimits(max_parts=60, max_depth=6, max_headers=80, max_text_chars=5_000)

CHARSETS = ["utf-8", "iso-8859-1", "iso-8859-2", "windows-1252", "koi8-r", "shift_jis",
            "gb2312", "utf8", "latin1", "x-unknown", "", "base64", "unicode_escape", "utf-16"]
ENCODINGS = ["7bit", "8bit", "quoted-printable", "base64", "x-bogus", ""]
LEAF_TYPES = ["text/plain", "text/html", "application/octet-stream", "text/calendar",
              "message/delivery-status", "message/disposition-notification"]
FROM_VALUES = [
    "Alice <alice@example.com>", '"ceo@contoso.com" <evil@x.test>', "a@x.test, b@x.test",
    "=?utf-8?q?ceo=40contoso.com?= <evil@x.test>", "alice@example.org)<bob@example.org>",
    "undisclosed:;", "<>", "garbage", "Ålice <ålice@exämple.com>", "=?x-unknown?b?////?= <a@b.c>",
    "=?unicode_escape?q?=5Cx41?= <a@b.c>", "=?utf-16?b?AEEA?= <a@b.c>",
]
AUTH_VALUES = ["mx.test; dmarc=pass header.from=example.com", "spf=fail (x (y)) smtp.mailfrom=",
               "mx.test; none", ";;;", "mx.test; dkim=pass header.d=", "= ; =pass a=b=c"]
ENCODED_WORDS = st.builds(
    "=?{}?{}?{}?=".format, st.sampled_from([*CHARSETS, "unknown-8bit", "rot13"]),
    st.sampled_from("qQbB"), st.text("=ABCDEFabcdef0123456789_@<>?/+", max_size=24))
SUBJECTS = st.lists(st.one_of(ENCODED_WORDS, st.text(max_size=20)), max_size=4).map(" ".join)
# Body text that cannot fake a boundary line or a header break: no "-", no CR/LF
# beyond the ones rendering adds, no characters str.splitlines treats as line ends.
SAFE_TEXT = st.text(st.characters(whitelist_categories=("L", "N", "Zs"),
                                  whitelist_characters=".,!?:;'\"()<>&=_é承ж"), max_size=120)


@dataclass(frozen=True)
class Leaf:
    content_type: str
    charset: str
    encoding: str
    text: str
    disposition: str


@dataclass(frozen=True)
class Multi:
    subtype: str
    children: tuple[Leaf | Multi, ...]


Tree = Leaf | Multi


def trees(text: st.SearchStrategy[str]) -> st.SearchStrategy[Tree]:
    dispositions = st.sampled_from(["", "inline", "attachment"])
    leaf = st.builds(Leaf, st.sampled_from(LEAF_TYPES), st.sampled_from(CHARSETS),
                     st.sampled_from(ENCODINGS), text, dispositions)
    return st.recursive(leaf, lambda kids: st.builds(
        Multi, st.sampled_from(["mixed", "alternative", "related", "report"]),
        st.lists(kids, min_size=1, max_size=4).map(tuple)), max_leaves=12)


def encode_text(text: str, charset: str) -> bytes:
    try:
        return text.encode(codecs.lookup(charset or "utf-8").name)
    except (LookupError, UnicodeError):
        return text.encode("utf-8")


def render_leaf(leaf: Leaf) -> bytes:
    params = f'; charset="{leaf.charset}"' if leaf.charset else ""
    head = f"Content-Type: {leaf.content_type}{params}\r\n"
    if leaf.encoding:
        head += f"Content-Transfer-Encoding: {leaf.encoding}\r\n"
    if leaf.disposition:
        head += f"Content-Disposition: {leaf.disposition}\r\n"
    data = encode_text(leaf.text, leaf.charset).replace(b"\r", b"").replace(b"\n", b"\r\n")
    if leaf.encoding == "base64":
        data = base64.encodebytes(data).replace(b"\n", b"\r\n")
    elif leaf.encoding == "quoted-printable":
        data = quopri.encodestring(data).replace(b"\n", b"\r\n")
    return head.encode() + b"\r\n" + data


def render(tree: Tree, counter: itertools.count[int]) -> bytes:
    if isinstance(tree, Leaf):
        return render_leaf(tree)
    boundary = f"=_b{next(counter)}_="
    parts = b"".join(b"--" + boundary.encode() + b"\r\n" + render(child, counter) + b"\r\n"
                     for child in tree.children)
    return (f'Content-Type: multipart/{tree.subtype}; boundary="{boundary}"\r\n\r\n'.encode()
            + parts + b"--" + boundary.encode() + b"--\r\n")


def shape(tree: Tree, depth: int = 0) -> tuple[int, int]:
    """(parts, deepest level) as read_message counts them."""
    if isinstance(tree, Leaf):
        return 1, depth
    counted = [shape(child, depth + 1) for child in tree.children]
    return 1 + sum(c for c, _ in counted), max(d for _, d in counted)


def message_bytes(tree: Tree, sender: str, auth: str, subject: str) -> bytes:
    clean = subject.replace("\r", " ").replace("\n", " ")
    head = (f"From: {sender}\r\nAuthentication-Results: {auth}\r\nSubject: {clean}\r\n"
            "Message-ID: <m@x.test>\r\nMIME-Version: 1.0\r\n").encode("utf-8", "surrogateescape")
    return head + render(tree, itertools.count())


def run_all(raw: bytes, limits: ParseLimits = LIMITS) -> DecodedMessage:
    """The three layers on ``raw``, within the time bound and with a sane outcome."""
    start = time.perf_counter()
    message = read_message(raw, limits)
    kind, kind_reasons = classify_kind(message)
    info = check_sender(message, trusted_authserv_id="mx.test", require_dmarc_pass=True)
    elapsed = time.perf_counter() - start
    assert elapsed < SECONDS, f"{elapsed:.2f}s for {len(raw)} bytes"
    assert isinstance(kind, MessageKind) and kind_reasons
    assert info.reasons and info.verified in (True, False, None)
    if message.problem is not None:
        assert message.problem and "\n" not in message.problem
        assert message.body_text == ""
    else:
        assert message.structure.part_count >= 1
        assert len(message.body_text) <= limits.max_text_chars
    return message


@SETTINGS
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    run_all(raw)


@SETTINGS
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_behind_a_header(raw: bytes) -> None:
    message = run_all(b"Subject: fuzz\r\n" + raw)
    assert message.problem is None or "limit" in message.problem or "deep" in message.problem


@SETTINGS
@given(trees(st.text(max_size=200)), st.sampled_from(FROM_VALUES), st.sampled_from(AUTH_VALUES),
       SUBJECTS, st.integers(min_value=0, max_value=4000))
def test_generated_mime_trees_even_truncated(tree: Tree, sender: str, auth: str, subject: str,
                                             cut: int) -> None:
    raw = message_bytes(tree, sender, auth, subject)
    run_all(raw)
    run_all(raw[:cut])


@SETTINGS
@given(trees(SAFE_TEXT), st.sampled_from(FROM_VALUES), st.sampled_from(AUTH_VALUES))
def test_well_formed_trees_match_the_oracle(tree: Tree, sender: str, auth: str) -> None:
    raw = message_bytes(tree, sender, auth, "Re: generated")
    message = run_all(raw, ParseLimits())
    parts, depth = shape(tree)
    assert message.problem is None
    assert (message.structure.part_count, message.structure.depth) == (parts, depth)
    oracle = message_from_bytes(raw, policy=policy.default)
    assert isinstance(oracle, EmailMessage)
    chosen = oracle.get_body(preferencelist=("plain", "html"))
    if chosen is None:
        assert message.body_text == ""
    else:
        assert message.body_is_html == (chosen.get_content_type() == "text/html")


@SETTINGS
@given(st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=300))
def test_limits_hold_for_generated_floods(depth: int, width: int) -> None:
    tree: Tree = Multi("mixed", tuple(Leaf("text/plain", "utf-8", "7bit", "x", "")
                                      for _ in range(width)))
    for _ in range(depth - 1):
        tree = Multi("mixed", (tree,))
    message = run_all(message_bytes(tree, "a@x.test", "mx.test; none", "flood"))
    parts, deepest = shape(tree)
    within = parts <= LIMITS.max_parts and deepest <= LIMITS.max_depth
    assert (message.problem is None) == within, message.problem
