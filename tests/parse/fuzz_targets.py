"""Fuzz targets: any bytes in, the promises of the parse and correlate hops checked.

A check raises ``InvariantBroken`` when a promise fails; any other exception is a
failure too, since everything checked here promises never to raise. The promises
are the ones an attacker of an approvals system would probe:

- the parser never raises, and never hides its own crash behind the catch-all
  problem sentence; a refused message carries one line of reason and nothing else;
- it stays within its limits (size, parts, depth, headers, text), and the parser
  is never handed more lines x open boundaries of work than the byte limit allows
  (counted, not timed, so a check is repeatable at any input size);
- the structure it reports matches a plain standard-library parse of the same bytes
  (the top-boundary rename must not change what is read);
- reply text only removes lines of the body, and quoted history (">" lines, an
  HTML blockquote) is never reply text; evidence is one line per reason;
- tokens are found only in canonical ``XXXX-XXXX`` form;
- a verified sender has an address with a local part and a domain;
- no word of the request's own subject counts as the replier's.

``targets()`` names them for the runner (``python -m tests.parse.fuzz``) and for the
regression tests over kept inputs (test_fuzz.py); the property tests reuse the checks.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from email.feedparser import BufferedSubFile
from email.message import Message
from email.parser import BytesParser

from ingest.parse.base import (
    Intent,
    MessageKind,
    ParsedMessage,
    ParseLimits,
    SenderInfo,
    TokenCandidate,
)
from ingest.parse.html_text import decode_header_text, decode_text, html_to_text
from ingest.parse.intent import classify_intent, subject_words_added
from ingest.parse.message import ParseOptions, parse_message
from ingest.parse.mime import DecodedMessage, _header_end, _single_part, read_message
from ingest.parse.reply_text import extract_reply
from ingest.parse.tokens import find_tokens, looks_like_token, normalise

# Small limits, so that inputs of a few kilobytes reach every limit's code path.
LIMITS = ParseLimits(max_bytes=64 * 1024, max_parts=60, max_depth=6, max_headers=80,
                     max_text_chars=5_000)
OPTIONS = ParseOptions(limits=LIMITS, trusted_authserv_id="mx.test", require_dmarc_pass=True)
REPLY_ADDRESS = "approvals@example.test"
# What read_message says when its catch-all caught a crash (its RecursionError sentence
# is expected on a deep message/rfc822 chain: nothing bounds that nesting before the parse).
_COMPAT32 = BytesParser(policy=policy.compat32)
_CRASH_PROBLEM = "could not be parsed"
_REPORT_BLOCKS = frozenset({"message/delivery-status", "message/global-delivery-status",
                            "message/disposition-notification",
                            "message/global-disposition-notification"})
# How mail clients prefix the subject of a reply to the request.
_REPLY_PREFIXES = ("Re: ", "RE: Re: ", "AW: ", "Fwd: ")


class InvariantBroken(AssertionError):
    """A promise of the parser does not hold; ``invariant`` names which one."""

    def __init__(self, invariant: str, detail: str = "") -> None:
        super().__init__(f"{invariant}: {detail[:300]}" if detail else invariant)
        self.invariant = invariant


def expect(holds: bool, invariant: str, detail: object = "") -> None:
    """Raise ``InvariantBroken(invariant)`` unless ``holds``."""
    if not holds:
        raise InvariantBroken(invariant, repr(detail) if detail != "" else "")


def check_decoded(raw: bytes, limits: ParseLimits = LIMITS) -> DecodedMessage:
    """read_message on ``raw``: within its work budget, and a clean refusal or a tree
    within ``limits`` that a plain parse agrees with. Returns the decoded message."""
    with parser_work() as work:
        decoded = read_message(raw, limits)
    shortcut = _single_part(raw, _header_end(raw))
    if shortcut is not None:
        expect(parser_tree(shortcut) == parser_tree(_COMPAT32.parsebytes(raw)),
               "the one-part shortcut builds another tree than the parser")
    # mime.py's budget: lines x open boundaries, a quarter of the byte limit per parse.
    expect(max(work.values(), default=0) <= limits.max_bytes // 4,
           "parser work over the budget", sorted(work.values()))
    if decoded.problem is not None:
        _check_problem(decoded.problem)
        expect(decoded.body_text == "", "a refused message has body text")
        return decoded
    parts, depth, most_headers = _oracle_shape(raw)
    expect(len(raw) <= limits.max_bytes, "size over max_bytes", len(raw))
    expect(len(decoded.headers) <= limits.max_headers, "headers over max_headers")
    expect(most_headers <= limits.max_headers, "part headers over max_headers")
    expect(1 <= decoded.structure.part_count <= limits.max_parts, "parts over max_parts",
           decoded.structure.part_count)
    expect(decoded.structure.depth <= limits.max_depth, "depth over max_depth")
    expect((decoded.structure.part_count, decoded.structure.depth) == (parts, depth),
           "structure differs from a plain parse",
           ((decoded.structure.part_count, decoded.structure.depth), (parts, depth)))
    expect(len(decoded.body_text) <= limits.max_text_chars, "body text over max_text_chars")
    return decoded


def parser_tree(message: Message) -> tuple[object, ...]:
    """What a one-part compat32 tree is made of (everything ackmail reads derives from it).
    The payload as stored: get_payload() decodes it by the charset label, which can raise."""
    return (list(message.raw_items()), message._payload, [type(d) for d in message.defects],
            message.is_multipart(), message.get_unixfrom())


@contextmanager
def parser_work() -> Iterator[Counter[BufferedSubFile]]:
    """Count the standard parser's work, per parse, while the block runs.

    The parser tests each line it reads against every open multipart boundary, so
    one line costs one plus the boundaries open; time would measure the same thing,
    but not repeatably.
    """
    work: Counter[BufferedSubFile] = Counter()
    readline = BufferedSubFile.readline

    def counted(self: BufferedSubFile) -> str:
        work[self] += 1 + len(self._eofstack)
        return readline(self)

    BufferedSubFile.readline = counted  # type: ignore[method-assign]
    try:
        yield work
    finally:
        BufferedSubFile.readline = readline  # type: ignore[method-assign]


def check_message(raw: bytes, limits: ParseLimits = LIMITS) -> DecodedMessage:
    """read_message and parse_message on ``raw``, and tokens and intent on the result."""
    decoded = check_decoded(raw, limits)
    options = OPTIONS if limits is LIMITS else replace(OPTIONS, limits=limits)
    parsed = parse_message(raw, options)
    expect(parsed.problem == decoded.problem, "parse_message and read_message disagree",
           (parsed.problem, decoded.problem))
    if parsed.problem is not None:
        expect((parsed.reply_text, parsed.intent) == ("", Intent.UNKNOWN),
               "a refused message carries a decision")
    else:
        check_parsed(parsed, limits)
    return decoded


def check_parsed(parsed: ParsedMessage, limits: ParseLimits = LIMITS) -> None:
    """The promises of a ParsedMessage that had no problem."""
    expect(isinstance(parsed.kind, MessageKind), "kind is not a MessageKind", parsed.kind)
    expect(len(parsed.reply_text) <= len(parsed.body_text) <= limits.max_text_chars,
           "reply text longer than the body text", (len(parsed.reply_text), len(parsed.body_text)))
    if parsed.kind is not MessageKind.REPLY:
        expect(parsed.intent is Intent.UNKNOWN, "a non-reply carries an intent", parsed.kind)
    expect(bool(parsed.reasons), "a parsed message has no reasons")
    for reason in parsed.evidence:
        expect(bool(reason) and _one_line(reason), "a reason is empty or not one line", reason)
    _check_sender(parsed.sender, parsed)
    for reply_address in (REPLY_ADDRESS, None):
        check_tokens(find_tokens(parsed, reply_address=reply_address))
    check_request_subject(parsed.subject)
    reread = classify_intent(parsed.reply_text, parsed.subject, request_subject=parsed.subject,
                             vocabulary=OPTIONS.vocabulary)
    expect(isinstance(reread.intent, Intent), "classify_intent gave no Intent", reread.intent)


def check_tokens(candidates: Iterable[TokenCandidate]) -> None:
    """Every token found is canonical, and found once per place."""
    seen = list(candidates)
    for candidate in seen:
        token = candidate.token
        expect(looks_like_token(token) and normalise(token) == token,
               "a found token is not canonical", token)
    expect(len(set(seen)) == len(seen), "a token is found twice in one place", seen)


def check_request_subject(request_subject: str) -> None:
    """A reply's subject made by a client from the request's adds no words of the replier."""
    for prefix in _REPLY_PREFIXES:
        added = subject_words_added(prefix + request_subject, request_subject)
        expect(added == "", "the request's own subject words count as the replier's",
               (prefix + request_subject, added))


def check_text(raw: bytes) -> None:
    """The text layers on any text: first line as a header value, the rest as a body."""
    text = raw.decode("utf-8", "replace")
    first, _, body = text.partition("\n")
    reply = extract_reply(body)
    expect(len(reply.text) <= len(body), "reply text longer than the body text")
    kept = {line.rstrip() for line in body.splitlines()}
    expect(all(line in kept for line in reply.text.split("\n") if line),
           "reply text has a line the body has not", reply.text)
    result = classify_intent(reply.text, first, request_subject=first[:40] or None)
    expect(isinstance(result.intent, Intent), "classify_intent gave no Intent", result.intent)
    check_request_subject(first)
    expect(_one_line(decode_header_text(first)), "a decoded header value is not one line", first)
    for piece in (first, *body.split()[:50]):
        token = normalise(piece)
        expect(token is None or (looks_like_token(token) and normalise(token) == token),
               "normalise gave a non-canonical token", (piece, token))
    quoted = ["\n".join(f"> {line}" for line in body.splitlines()),
              html_to_text(f"<blockquote>{html.escape(body)}</blockquote>")[0]]
    for history in quoted:
        expect(extract_reply(history).text == "", "quoted history read as reply text", history)
    decoded, _ = decode_text(raw, first.strip()[:60] or None)
    expect(isinstance(decoded, str), "decode_text gave no text")
    check_tokens(find_tokens(_text_message(first, body), reply_address=REPLY_ADDRESS))


@dataclass(frozen=True)
class Target:
    """One fuzz target: ``build`` turns fuzzer bytes into the input ``check`` takes;
    ``product`` is the code under test alone, the part whose time counts."""

    name: str
    check: Callable[[bytes], object]
    product: Callable[[bytes], object]
    build: Callable[[bytes], bytes | None] | None = None

    def input_of(self, data: bytes) -> bytes | None:
        """What ``check`` takes for fuzzer bytes ``data`` (None: nothing to check)."""
        return self.build(data) if self.build else data


def targets() -> dict[str, Target]:
    """Every target by name (the composing one imports hypothesis, so it is built late)."""
    from tests.parse.fuzz_compose import compose

    found = [
        # Raw bytes as a message, under small limits.
        Target("message", check_message, lambda raw: parse_message(raw, OPTIONS)),
        # Raw bytes as text: the first line a header value, the rest a body.
        Target("text", check_text, check_text),
        # Hostile MIME messages that hypothesis builds from the bytes, small limits.
        Target("compose", check_message, lambda raw: parse_message(raw, OPTIONS), compose),
    ]
    return {target.name: target for target in found}


def _oracle_shape(raw: bytes) -> tuple[int, int, int]:
    """Parts, depth and most headers in one part, by a plain compat32 parse."""
    root = message_from_bytes(raw, policy=policy.compat32)
    parts = deepest = most = 0
    stack: list[tuple[Message, int]] = [(root, 0)]
    while stack:
        part, depth = stack.pop()
        parts, deepest, most = parts + 1, max(deepest, depth), max(most, len(part))
        if part.is_multipart() and part.get_content_type() not in _REPORT_BLOCKS:
            children = part.get_payload()
            stack.extend((child, depth + 1) for child in children if isinstance(child, Message))
    return parts, deepest, most


def _check_problem(problem: str) -> None:
    expect(bool(problem) and _one_line(problem), "a problem is empty or not one line", problem)
    expect(_CRASH_PROBLEM not in problem, "the parser crashed behind the catch-all", problem)


def _check_sender(sender: SenderInfo, parsed: ParsedMessage) -> None:
    if sender.verified is not True:
        return
    local, _, domain = (sender.address or "").rpartition("@")
    expect(bool(local and domain), "a verified sender has no address", sender.address)
    expect(_one_line(parsed.headers.get("From", "")), "a verified From is not one line")


def _one_line(text: str) -> bool:
    return len(text.splitlines()) <= 1


def _text_message(first: str, body: str) -> ParsedMessage:
    return ParsedMessage(
        message_id=None, in_reply_to=first, references=(first, body[:200]), subject=first,
        sender=SenderInfo(None), recipients=(first.strip().lower(), REPLY_ADDRESS), date=None,
        kind=MessageKind.REPLY, body_text=body, reply_text="", intent=Intent.UNKNOWN)
