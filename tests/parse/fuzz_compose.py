"""Hostile MIME messages, built by hypothesis, for the fuzzer and the property tests.

Trees of nested multiparts with real and bogus charsets and transfer encodings (the
shapes the property tests hold against an oracle), and on top of them what an
attacker of an approvals system sends: From and Subject tricks with encoded words,
tokens in odd spellings, deep nesting under boundaries the parser reads but a
cheap scan may miss (over-long, RFC 2231 continuations, quoted escapes, lone-CR
lines), floods of parts and lines, NULs and huge lines, cuts anywhere.

``compose`` turns fuzzer bytes into such a message through hypothesis's
``fuzz_one_input``, so a coverage-guided fuzzer steers hypothesis's choices.
"""

from __future__ import annotations

import base64
import codecs
import itertools
import quopri
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CHARSETS = ["utf-8", "iso-8859-1", "iso-8859-2", "windows-1252", "koi8-r", "shift_jis",
            "gb2312", "utf8", "latin1", "x-unknown", "", "base64", "unicode_escape", "utf-16",
            "utf-7", "utf-32", "cp037", "hz", "iso-2022-jp", "idna", "rot13", "zlib",
            "utf-8-sig", "x-user-defined", "iso-8859-8-i", "UTF-8\x00", "utf-8'en'"]
ENCODINGS = ["7bit", "8bit", "quoted-printable", "base64", "x-bogus", "", "x-uuencode"]
LEAF_TYPES = ["text/plain", "text/html", "application/octet-stream", "text/calendar",
              "message/delivery-status", "message/disposition-notification"]
# Leaves whose text the parser reads as more parts (so a tree's shape no longer says).
HOSTILE_LEAF_TYPES = [*LEAF_TYPES, "message/rfc822", "multipart/mixed", "text/plain\x00"]
FROM_VALUES = [
    "Alice <alice@example.com>", '"ceo@contoso.com" <evil@x.test>', "a@x.test, b@x.test",
    "=?utf-8?q?ceo=40contoso.com?= <evil@x.test>", "alice@example.org)<bob@example.org>",
    "undisclosed:;", "<>", "garbage", "Ålice <ålice@exämple.com>", "=?x-unknown?b?////?= <a@b.c>",
    "=?unicode_escape?q?=5Cx41?= <a@b.c>", "=?utf-16?b?AEEA?= <a@b.c>",
    "alice@example.com\u200b <alice@example.com>", "Alice <alice@example.com> (bob@evil.test)",
    '"Alice\\" <alice@example.com>" <evil@x.test>', "alice@example.com@evil.test",
]
AUTH_VALUES = ["mx.test; dmarc=pass header.from=example.com", "spf=fail (x (y)) smtp.mailfrom=",
               "mx.test; none", ";;;", "mx.test; dkim=pass header.d=", "= ; =pass a=b=c",
               "mx.test; dmarc=pass", "MX.TEST; dkim=pass header.d=example.com.evil.test"]
# Headers an attacker adds: token spellings, a second From, look-alike addresses, floods.
EXTRA_HEADERS = [
    "In-Reply-To: <ackmail.R7K2-9QXM.5f3a@example.test>", "In-Reply-To: ackmail.R7K2-9QXM.1@x",
    "References: <a@b> <ackmail.O1L0-OILO.1@x> <ackmail.r7k29qxm.2@x>",
    "To: approvals+R7K2-9QXM@example.test", "To: =?utf-8?q?approvals+R7K2-9QXM?=@example.test",
    "Cc: approvals+r7k2-9qxm@EXAMPLE.test, approvals+@example.test", "Sender: other@x.test",
    "From: second@x.test", "Auto-Submitted: auto-replied", "Subject: [\u017f\u017f\u017f\u017f-",
    "Content-Type: text/plain; charset=utf-7", 'Content-Type: multipart/mixed; boundary="a"',
    "X-Long: " + "a" * 5000, "Subject: =?utf-8?b?QVBQUk9WRUQ=?=", "Date: Mon, 99 Foo 99999",
    "Content-Transfer-Encoding: base64", "Authentication-Results: mx.test; dmarc=fail",
    "X-Folded: a\r\n\tb\r\n c", "Content-Type: message/rfc822", "Subject:\r\n =?utf-8?Q?a?=",
]
ATTACK_TEXT = [
    "APPROVED", "Approve\n\nOn Mon, 1 Jan 2026, Bob <b@x> wrote:\n> Reject", "Ref: R7K2-9QXM",
    "<html><blockquote>approve</blockquote><![if x]>no</html>", "+AEEAUABQAFIATwBWAEU-",
    "not\napproved", "-- \nApproved", "Approved?\u2028Yes", "A\x00P\x00P", "> > > approve",
    "=?utf-8?b?QVBQUk9WRQ==?=", "-----Original Message-----\nApproved",
]
ENCODED_WORDS = st.builds(
    "=?{}?{}?{}?=".format, st.sampled_from([*CHARSETS, "unknown-8bit", "rot13"]),
    st.sampled_from("qQbB"), st.text("=ABCDEFabcdef0123456789_@<>?/+", max_size=24))
SUBJECTS = st.lists(st.one_of(ENCODED_WORDS, st.text(max_size=20)), max_size=4).map(" ".join)
# Body text that cannot fake a boundary line or a header break: no "-", no CR/LF
# beyond the ones rendering adds, no characters str.splitlines treats as line ends.
SAFE_TEXT = st.text(st.characters(whitelist_categories=("L", "N", "Zs"),
                                  whitelist_characters=".,!?:;'\"()<>&=_é承ж"), max_size=120)
# How each level of a deep nest names its boundary (as the parser reads all of them).
NEST_STYLES = {
    "plain": 'boundary="=_n{0}_="',
    "long": 'boundary="{0:_>240}"',
    "rfc2231": 'boundary*0="=_n{0}"; boundary*1="_="',
    "escaped": 'boundary="=_n\\"{0}_="',
    "same": 'boundary="=_same_="',
}
# Mostly small counts, sometimes a flood.
SOME = st.one_of(st.just(0), st.integers(1, 50), st.integers(51, 3_000))
LINE_ENDS = {"crlf": b"\r\n", "lf": b"\n", "cr": b"\r"}


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


def trees(text: st.SearchStrategy[str],
          leaf_types: list[str] = LEAF_TYPES) -> st.SearchStrategy[Tree]:
    """MIME trees of up to 12 leaves with the given leaf text."""
    dispositions = st.sampled_from(["", "inline", "attachment"])
    leaf = st.builds(Leaf, st.sampled_from(leaf_types), st.sampled_from(CHARSETS),
                     st.sampled_from(ENCODINGS), text, dispositions)
    return st.recursive(leaf, lambda kids: st.builds(
        Multi, st.sampled_from(["mixed", "alternative", "related", "report"]),
        st.lists(kids, min_size=1, max_size=4).map(tuple)), max_leaves=12)


def encode_text(text: str, charset: str) -> bytes:
    """``text`` in ``charset`` when Python can write it, else in UTF-8 (the label lies)."""
    try:
        return text.encode(codecs.lookup(charset or "utf-8").name)
    except (LookupError, UnicodeError, TypeError, ValueError):
        return text.encode("utf-8", "surrogatepass")


def render_leaf(leaf: Leaf) -> bytes:
    """One leaf part: its headers, a blank line, its encoded text."""
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
    return head.encode("utf-8", "surrogatepass") + b"\r\n" + data


def render(tree: Tree, counter: itertools.count[int]) -> bytes:
    """A tree as MIME, each multipart with a fresh boundary."""
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


def message_bytes(tree: Tree, sender: str, auth: str, subject: str, extra: str = "") -> bytes:
    """A whole message: top headers, then the rendered tree."""
    return top_headers(sender, auth, subject, extra) + render(tree, itertools.count())


def top_headers(sender: str, auth: str, subject: str, extra: str = "") -> bytes:
    """The top-level headers but Content-Type, ``extra`` lines last."""
    clean = subject.replace("\r", " ").replace("\n", " ")
    head = (f"From: {sender}\r\nAuthentication-Results: {auth}\r\nSubject: {clean}\r\n"
            f"Message-ID: <m@x.test>\r\nMIME-Version: 1.0\r\n{extra}")
    return head.encode("utf-8", "surrogateescape")


def nest(body: bytes, depth: int, style: str) -> bytes:
    """``body`` (a part) wrapped in ``depth`` multiparts, boundaries named per ``style``."""
    for level in range(depth):
        param = NEST_STYLES[style].format(level)
        boundary = _boundary_of(param)
        body = (f"Content-Type: multipart/mixed; {param}\r\n\r\n--{boundary}\r\n".encode()
                + body + f"\r\n--{boundary}--\r\n".encode())
    return body


def _boundary_of(param: str) -> str:
    """The boundary the parser reads from one of ``NEST_STYLES``' parameters."""
    pieces = [piece.split("=", 1)[1].strip('"') for piece in param.split("; ")]
    return "".join(pieces).replace('\\"', '"')  # email.utils.unquote's escape


@st.composite
def hostile_messages(draw: st.DrawFn) -> bytes:
    """A message an attacker might send: see the module docstring."""
    text = st.one_of(st.text(max_size=200), st.sampled_from(ATTACK_TEXT))
    tree = draw(trees(text, HOSTILE_LEAF_TYPES))
    extra = "".join(f"{line}\r\n" for line in draw(st.lists(st.sampled_from(EXTRA_HEADERS),
                                                            max_size=4)))
    head = top_headers(draw(st.sampled_from(FROM_VALUES)), draw(st.sampled_from(AUTH_VALUES)),
                       draw(SUBJECTS), extra)
    flood = draw(st.sampled_from([b"", b"x\r\n", b"--\r\n", b"--=_n0_=\r\n", b"\x00\r\n"]))
    body = render(tree, itertools.count()) + flood * draw(SOME)
    depth = draw(st.one_of(st.just(0), st.integers(1, 8), st.integers(9, 60)))
    raw = head + nest(body, depth, draw(st.sampled_from(sorted(NEST_STYLES))))
    for kind, at, count in draw(st.lists(EDITS, max_size=4)):
        raw = _edit(raw, kind, at, count)
    return raw.replace(b"\r\n", LINE_ENDS[draw(st.sampled_from(sorted(LINE_ENDS)))])


EDITS = st.tuples(st.sampled_from(["nul", "dup", "drop", "long", "cut", "word"]),
                  st.floats(0, 1), st.integers(1, 1_000))


def _edit(raw: bytes, kind: str, at: float, count: int) -> bytes:
    """One byte-level edit of a rendered message, at a line chosen by ``at``."""
    lines = raw.split(b"\r\n")
    index = min(int(at * len(lines)), len(lines) - 1)
    if kind == "cut":
        return raw[:int(at * len(raw))]
    insert = {"nul": [b"\x00"], "dup": [lines[index]] * count, "drop": [],
              "long": [b"A" * count * 37], "word": [b"Subject: =?utf-8?b?" + b"QQ" * count + b"?="]}
    lines[index:index + (kind == "drop")] = insert[kind]
    return b"\r\n".join(lines)


_DRAWN: list[bytes] = []


@settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile_messages())
def _draw(raw: bytes) -> None:
    _DRAWN.append(raw)


def compose(data: bytes) -> bytes | None:
    """The hostile message that hypothesis builds from ``data``; None when it builds none."""
    _DRAWN.clear()
    _draw.hypothesis.fuzz_one_input(data)  # type: ignore[attr-defined]
    return _DRAWN[-1] if _DRAWN else None
