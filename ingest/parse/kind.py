"""What sort of message arrived: reply, auto_reply, bounce, receipt or new.

Routing is an ordered table of small rules (like Mailman's chains): every rule is
checked, the first rule that hits decides the kind, and every hit for that kind is
kept as evidence. Bounce and receipt rules come first, then auto-reply, then reply,
so a bounce that quotes In-Reply-To is still a bounce. Subject and header
vocabularies are data in ``auto_subjects.toml``.

X-Auto-Response-Suppress on its own is deliberately not evidence: it asks others
not to auto-reply *to* this message, and Outlook, Teams, ticketing tools and
mass-mailers put it on ordinary mail, so a real approval would be dropped. Exchange's
own auto-replies carry Auto-Submitted, an auto-reply subject, or the
X-MS-Exchange-Inbox-Rules-Loop header of the server-side rule that sent them; only
that last pairing (suppress value All/OOF/AutoReply plus the rules-loop header) is a
rule here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path

from ingest.parse.base import MessageKind
from ingest.parse.html_text import excerpt
from ingest.parse.mime import DecodedMessage

VOCABULARY_FILE = Path(__file__).with_name("auto_subjects.toml")
_SPACE_BEFORE_COLON = re.compile(r"\s+:")
_LEADING_TAGS = re.compile(r"^(?:\s*\[[^\]]{0,40}\])+")
_FALSE_VALUES = frozenset({"no", "false", "0", ""})
_BODY_LOOK_CHARS = 600  # bounce phrases sit in the first paragraph


def _fold(text: str) -> str:
    """Case-folded, fullwidth colon made plain, no space before colons."""
    return _SPACE_BEFORE_COLON.sub(":", text.casefold().replace("\uff1a", ":")).strip()


def _longest_first(entries: Iterable[str]) -> list[str]:
    """Folded entries, longest first so "out of office autoreply:" beats "out of office"."""
    return sorted({_fold(entry) for entry in entries}, key=len, reverse=True)


def _prefix_pattern(entries: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any entry at the start; word entries must end at a non-letter."""
    parts = (re.escape(entry) + ("" if entry.endswith(":") else r"(?![^\W\d_])")
             for entry in _longest_first(entries))
    return re.compile("^(?:" + "|".join(parts) + ")")


def _reply_pattern(prefixes: Iterable[str]) -> re.Pattern[str]:
    """Reply prefixes, each optionally counted ("Re[2]:", "Re(2):", "Re^2:"), then a colon."""
    words = "|".join(re.escape(prefix) for prefix in _longest_first(prefixes))
    return re.compile(rf"^(?:{words})(?:\[\d+\]|\(\d+\)|\^\d+)?:")


@dataclass(frozen=True)
class KindVocabulary:
    """The compiled contents of ``auto_subjects.toml``."""

    bounce_subjects: re.Pattern[str]
    bounce_senders: frozenset[str]
    bounce_sender_names: frozenset[str]
    bounce_sender_words: tuple[str, ...]
    bounce_phrases: tuple[str, ...]
    receipt_subjects: re.Pattern[str]
    auto_subjects: re.Pattern[str]
    auto_headers: tuple[str, ...]
    precedence: frozenset[str]
    suppress_values: frozenset[str]
    reply_prefixes: re.Pattern[str]


def load_vocabulary(path: Path = VOCABULARY_FILE) -> KindVocabulary:
    """Read and compile the classifier's vocabularies (done once, at import)."""
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    bounce, receipt, auto = data["bounce"], data["receipt"], data["auto_reply"]
    senders = frozenset(word.lower() for word in bounce["senders"])
    sender_names = frozenset(word.lower() for word in bounce["sender_names"])
    return KindVocabulary(
        bounce_subjects=_prefix_pattern(bounce["subjects"]),
        bounce_senders=senders,
        bounce_sender_names=sender_names,
        bounce_sender_words=tuple(senders | sender_names),
        bounce_phrases=tuple(_fold(p) for p in bounce["body_phrases"]),
        receipt_subjects=_prefix_pattern(receipt["subjects"]),
        auto_subjects=_prefix_pattern(auto["subjects"]),
        auto_headers=tuple(auto["headers"]),
        precedence=frozenset(auto["precedence"]),
        suppress_values=frozenset(auto["suppress_values"]),
        reply_prefixes=_reply_pattern(data["reply"]["prefixes"]),
    )


VOCABULARY = load_vocabulary()

Check = Callable[[DecodedMessage], str | None]


@dataclass(frozen=True)
class KindRule:
    """One row of the routing table: a named check that, on a hit, says the kind."""

    name: str
    kind: MessageKind
    check: Check


@lru_cache(maxsize=1024)
def _subject_key(subject: str) -> str:
    return _fold(_LEADING_TAGS.sub("", subject))


def _subject_rule(pattern: re.Pattern[str]) -> Check:
    def check(message: DecodedMessage) -> str | None:
        match = pattern.match(_subject_key(message.subject))
        return f"subject starts with '{match.group(0)}'" if match else None
    return check


def _report_type(wanted: str) -> Check:
    def check(message: DecodedMessage) -> str | None:
        hit = message.structure.report_type == wanted
        return f"multipart/report; report-type={wanted}" if hit else None
    return check


def _delivery_status_part(message: DecodedMessage) -> str | None:
    return "message/delivery-status part" if message.structure.has_delivery_status else None


def _disposition_part(message: DecodedMessage) -> str | None:
    hit = message.structure.has_disposition_notification
    return "message/disposition-notification part" if hit else None


def _daemon_sender(message: DecodedMessage) -> str | None:
    raw = message.headers.raw("from") or ""
    folded = raw.lower()
    if not any(word in folded for word in VOCABULARY.bounce_sender_words):
        return None  # the address parser is the slow part; most mail needs no parse
    name, address = parseaddr(raw)
    local = address.rpartition("@")[0] or address
    if local.lower() in VOCABULARY.bounce_senders or name.lower() in VOCABULARY.bounce_sender_names:
        return f"From {excerpt(address or name, 60)} is a mail system"
    return None


def _null_sender_bounce_text(message: DecodedMessage) -> str | None:
    if (message.headers.raw("return-path") or "").replace(" ", "") != "<>":
        return None
    opening = _fold(message.body_text[:_BODY_LOOK_CHARS])
    phrase = next((p for p in VOCABULARY.bounce_phrases if p in opening), None)
    return f"Return-Path <> and the body says '{phrase}'" if phrase else None


def _content_class_mdn(message: DecodedMessage) -> str | None:
    value = (message.headers.raw("content-class") or "").strip().lower()
    return "Content-Class: urn:content-classes:mdn" if value == "urn:content-classes:mdn" else None


def _auto_submitted(message: DecodedMessage) -> str | None:
    value = (message.headers.raw("auto-submitted") or "").split(";")[0].strip().lower()
    return f"Auto-Submitted: {excerpt(value, 40)}" if value and value != "no" else None


def _auto_reply_header(message: DecodedMessage) -> str | None:
    for name in VOCABULARY.auto_headers:
        value = message.headers.raw(name)
        if value is not None and value.strip().lower() not in _FALSE_VALUES:
            return f"{name}: {excerpt(value.strip(), 40)}"
    return None


def _precedence(message: DecodedMessage) -> str | None:
    value = (message.headers.raw("precedence") or "").strip().lower()
    return f"Precedence: {value}" if value in VOCABULARY.precedence else None


def _exchange_rule_reply(message: DecodedMessage) -> str | None:
    suppress = message.headers.raw("x-auto-response-suppress") or ""
    values = {v.strip().lower() for v in suppress.split(",")}
    if values & VOCABULARY.suppress_values and "x-ms-exchange-inbox-rules-loop" in message.headers:
        return (f"X-Auto-Response-Suppress: {excerpt(suppress, 40)} "
                "with X-MS-Exchange-Inbox-Rules-Loop")
    return None


def _in_reply_to(message: DecodedMessage) -> str | None:
    return f"In-Reply-To {message.in_reply_to}" if message.in_reply_to else None


def _references(message: DecodedMessage) -> str | None:
    count = len(message.references)
    return f"References {count} earlier message{'s' * (count != 1)}" if count else None


_B, _R, _A, _P = MessageKind.BOUNCE, MessageKind.RECEIPT, MessageKind.AUTO_REPLY, MessageKind.REPLY

KIND_RULES: tuple[KindRule, ...] = (
    # RFC 3464/6522 delivery status notification: the standard bounce.
    KindRule("dsn-report", _B, _report_type("delivery-status")),
    # A delivery-status part without the report-type parameter (or nested in a wrapper).
    KindRule("dsn-part", _B, _delivery_status_part),
    # MAILER-DAEMON, postmaster, "Mail Delivery Subsystem", Exchange's NDR mailbox.
    KindRule("daemon-sender", _B, _daemon_sender),
    # "Undeliverable:", "Mail delivery failed", ... in many languages.
    KindRule("bounce-subject", _B, _subject_rule(VOCABULARY.bounce_subjects)),
    # qmail/old Exim text bounces: null return path plus a known opening sentence.
    KindRule("null-sender-bounce-text", _B, _null_sender_bounce_text),
    # RFC 8098 message disposition notification (read receipt).
    KindRule("mdn-report", _R, _report_type("disposition-notification")),
    KindRule("mdn-part", _R, _disposition_part),
    # Outlook/Exchange marks its read receipts with this content class.
    KindRule("mdn-content-class", _R, _content_class_mdn),
    # "Read:", "Lu :", "Gelesen:", ... (a person never starts a reply subject so).
    KindRule("receipt-subject", _R, _subject_rule(VOCABULARY.receipt_subjects)),
    # RFC 3834: anything but "no" means a machine sent it.
    KindRule("auto-submitted", _A, _auto_submitted),
    # Vendor headers of vacation/autoresponder software.
    KindRule("autoreply-header", _A, _auto_reply_header),
    # Precedence bulk/junk/auto_reply/list: no person sets these by hand.
    KindRule("precedence", _A, _precedence),
    # Exchange inbox-rule replies (see the module docstring for why this pairing).
    KindRule("exchange-rule-reply", _A, _exchange_rule_reply),
    # "Automatic reply:", "Abwesenheitsnotiz:", "Réponse automatique :", ...
    KindRule("auto-subject", _A, _subject_rule(VOCABULARY.auto_subjects)),
    # Threading headers: the client answered one of our messages.
    KindRule("in-reply-to", _P, _in_reply_to),
    KindRule("references", _P, _references),
    # "Re:", "AW:", "RE :", "SV:", "Antw:", "R:", "RES:" ... without threading headers.
    KindRule("reply-subject", _P, _subject_rule(VOCABULARY.reply_prefixes)),
)


def classify_kind(message: DecodedMessage) -> tuple[MessageKind, tuple[str, ...]]:
    """The kind of ``message`` and the evidence for it (every hit of the winning kind)."""
    if message.problem is not None:
        return MessageKind.NEW, (f"not classified: {message.problem}",)
    hits = [(rule.kind, reason) for rule in KIND_RULES if (reason := rule.check(message))]
    if not hits:
        return MessageKind.NEW, ("no In-Reply-To, References or reply prefix",)
    kind = hits[0][0]
    return kind, tuple(reason for hit_kind, reason in hits if hit_kind == kind)
