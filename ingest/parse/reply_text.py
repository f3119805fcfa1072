"""Reply-text extraction: keep what the sender wrote, drop what their mail client added.

One pass over the lines. Each line is either kept, skipped as a ``>`` quote, or is a
marker after which everything is history (an "On ... wrote:" attribution, Outlook's
header block or separator, "-----Original Message-----", a forward banner, the
"-- " signature delimiter, a "Sent from my iPhone" footer). An attribution that is
followed by ``>`` lines only introduces that quote, so text typed below the quote
(bottom-posting) is kept. Finally a trailing sign-off block ("Thanks,\\nBob") is
dropped when it clearly is one. The marker words of every language come from the
vocabulary files (``[reply]`` tables), so adding a language needs no code.

Known limits: with interleaved replies every unquoted line is kept, so answers to
several quoted questions run together; history pasted without any marker (no ``>``,
no header, no attribution) cannot be told from new text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ingest.parse.base import ReplyText
from ingest.parse.vocabulary import Vocabulary, default_vocabulary, fold, phrase_pattern

# No real marker line is longer; longer lines are never tested, which also bounds
# the work any regex can do on hostile input.
MAX_MARKER_CHARS = 400
# Lines searched for the rest of a header block (From:/Sent:/To:/Subject:) after its first.
HEADER_LOOKAHEAD = 8
# Header lines, one of them a "From:", that make a header block.
HEADER_LINES_NEEDED = 3
# Lines of a header block recognised by shape alone: at least, at most.
HEADER_SHAPE_LINES = (3, 5)
# Lines an attribution may be wrapped over ("On ... Bob <bob@x>\nwrote:").
ATTRIBUTION_LINES = 3
# A sign-off block: the sign-off line and at most this many short lines after it.
SIGNATURE_LINES = 6
SIGNATURE_LINE_CHARS = 60

_DIGIT = re.compile(r"\d")
# The shape of a quote header in any language: an address, or a date with a time
# ("2014-03-20 8:48", "20.03.2014 klo 8.48", "2014年3月20日 8:48").
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_TIME = re.compile(r"(?<!\d)\d{1,2}[:.h]\d{2}(?!\d)")
_DATE = re.compile(r"\d{4}|\d{1,2}[./-]\d{1,2}[./-]\d{2}|\d\s*[年月일월]")
# A header's final colon, ASCII or full-width, maybe followed by bidi marks (Hebrew, Arabic).
_HEADER_END = re.compile(r"[:\uff1a][\s\u200e\u200f\u202a-\u202e\u2066-\u2069]*$")
# "Label: value" with a short label of words, no digits ("Feladó:", "送信日時:", "보낸 사람:").
_LABELLED = re.compile(
    r"\s*[*_]*(?P<label>[^\W\d_][^\W\d]*(?:[ .-][^\W\d]+){0,2})[*_]*\s?[:\uff1a]\s*\S")
# A line of rules or bullets only ("----", "* * *", "___"), left over around a cut.
_JUNK = re.compile(r"[\s*_=~#.\-\u2013\u2014]*")


# After a sign-off word: punctuation, then at most a name ("Thanks, Jean-Luc").
_SIGN_OFF_TAIL = r"[\s,.!:;-]*(?:[^\W\d][\w'.-]*(?:\s+[^\W\d][\w'.-]*){0,2})?[\s,.!]*"


def _header_key(words: tuple[str, ...]) -> str:
    """A header name as Outlook writes it, also bold from HTML ("**From:**") or "De :"."""
    return rf"[ \t*_]*(?P<key>{phrase_pattern(words)})[ \t]*\**[ \t]*:"


@dataclass(frozen=True)
class ReplyMarkers:
    """The compiled marker patterns of one vocabulary."""

    line: re.Pattern[str]
    header_key: re.Pattern[str]
    header_from: re.Pattern[str]
    attribution_start: re.Pattern[str]
    attribution_verb: re.Pattern[str]
    sign_off: re.Pattern[str]
    decision_words: re.Pattern[str]

    @classmethod
    def from_vocabulary(cls, vocabulary: Vocabulary) -> ReplyMarkers:
        """Compile the ``[reply]`` lists of every language into a few patterns."""
        words = vocabulary.union
        starts = phrase_pattern(words("attribution_start"))
        line = "|".join((
            # Decorated too, as HTML bold turns it: "*-------- Original Message --------*".
            rf"(?P<original>[*_]*-{{2,}}\s*(?:{phrase_pattern(words('original_message'))})"
            r"\s*-{2,}[*_]*)\s*$",
            rf"(?P<forward>(?:-{{2,}}\s*)?(?:{phrase_pattern(words('forwarded'))})"
            rf"\s*(?:-{{2,}}|:)?)\s*$",
            r"(?P<separator>_{10,})\s*$",
            r"(?P<signature>--)\s*$",
            rf"(?P<footer>(?:{'|'.join(words('mobile_footers'))}))\s*$",
            rf"(?P<header>{_header_key((*words('header_from'), *words('header_keys')))})",
            rf"(?P<attribution>(?:{starts})\s)",
        ))
        sign_offs = phrase_pattern(fold(w) for w in words("sign_offs"))
        return cls(
            line=re.compile(line, re.IGNORECASE),
            header_key=re.compile(
                _header_key((*words("header_from"), *words("header_keys"))), re.IGNORECASE
            ),
            header_from=re.compile(_header_key(words("header_from")), re.IGNORECASE),
            attribution_start=re.compile(rf"(?:{starts})\s", re.IGNORECASE),
            attribution_verb=re.compile(
                rf"(?P<verb>{phrase_pattern(words('attribution_verb'))})", re.IGNORECASE
            ),
            sign_off=re.compile(f"(?:{sign_offs}){_SIGN_OFF_TAIL}"),
            decision_words=vocabulary.decision_words,
        )


@lru_cache(maxsize=16)
def _markers(vocabulary: Vocabulary) -> ReplyMarkers:
    return ReplyMarkers.from_vocabulary(vocabulary)


def extract_reply(body_text: str, *, vocabulary: Vocabulary | None = None) -> ReplyText:
    """The part of ``body_text`` the sender wrote in this message, and what was removed."""
    markers = _markers(vocabulary or default_vocabulary())
    scanner = _Scanner(markers, body_text.splitlines())
    kept = scanner.run()
    kept, sign_off = _without_sign_off(kept, markers)
    if sign_off:
        scanner.note(f"sign-off block '{sign_off}'")
    return ReplyText(text=_tidy(kept), reasons=tuple(scanner.reasons))


class _Scanner:
    """Walks the lines once, keeping the sender's and noting why others were dropped."""

    def __init__(self, markers: ReplyMarkers, lines: list[str]) -> None:
        self.markers = markers
        self.lines = lines
        self.kept: list[str] = []
        self.reasons: dict[str, None] = {}  # ordered set

    def note(self, reason: str) -> None:
        """Record why something was removed (once per distinct reason)."""
        self.reasons[reason] = None

    def run(self) -> list[str]:
        """The kept lines; stops at the first marker after which all is history."""
        index = 0
        while index < len(self.lines):
            index = self._step(index)
        return self.kept

    def _step(self, index: int) -> int:
        """Handle the line at ``index``; return the index of the next line to look at."""
        stripped = self.lines[index].strip()
        if stripped.startswith(">"):
            return self._skip_quote(index)
        if stripped and len(stripped) <= MAX_MARKER_CHARS:
            found = self.markers.line.match(stripped)
            after = self._after_marker(index, found) if found else self._after_said(index, stripped)
            if after is None:  # a header block of words no vocabulary lists
                after = self._after_header_shape(index)
            if after is not None:
                return after
        self.kept.append(self.lines[index])
        return index + 1

    def _after_marker(self, index: int, found: re.Match[str]) -> int | None:
        """Where to go on after a marker line, or None when it is ordinary text."""
        end = len(self.lines)
        kind = found.lastgroup
        if kind == "header":
            if not self._header_block_starts(index):
                return None
            self.note(f"quoted history from the '{found.group('key')}:' header block")
            return end
        if kind == "attribution":
            return self._after_attribution(index)
        self.note(_CUT_REASONS[str(kind)].format(found.group(0).strip()))
        return end

    def _after_said(self, index: int, stripped: str) -> int | None:
        """After 'Bob Smith/Contoso@Contoso wrote on 11/02/2026 10:00 AM:' (an address, a
        verb and a final colon, as Lotus Notes writes it): all is history."""
        if not stripped.endswith(":") or "@" not in stripped:
            return None
        verb = self.markers.attribution_verb.search(stripped)
        if verb is None:
            return None
        self.note(f"quoted history from '... {verb.group('verb')} ...:'")
        return index + 1 if self._quote_follows(index + 1) else len(self.lines)

    def _after_header_shape(self, index: int) -> int | None:
        """After a header block in a language no vocabulary lists ("Feladó: Bob <b@x>",
        "Elküldve: 2026. dec. 7.", "Címzett: ...", "Tárgy: ..."): 3-5 "Label: value" lines,
        the first with an address, one with a date. All after it is history."""
        if not _ADDRESS.search(self.lines[index]):
            return None
        block: list[re.Match[str]] = []
        for line in self.lines[index:index + HEADER_SHAPE_LINES[1]]:
            labelled = _LABELLED.match(line) if len(line) <= MAX_MARKER_CHARS else None
            if labelled is None:
                break
            block.append(labelled)
        if len(block) < HEADER_SHAPE_LINES[0] or not any(_DATE.search(m.string) for m in block):
            return None
        self.note(f"quoted history from a header block by its shape ('{block[0]['label']}:')")
        return len(self.lines)

    def _header_block_starts(self, index: int) -> bool:
        """Whether a header block (From:, Sent:, To:, Subject: in any order) starts here."""
        window = [line.strip() for line in self.lines[index:index + 1 + HEADER_LOOKAHEAD]]
        headers = [line for line in window
                   if len(line) <= MAX_MARKER_CHARS and self.markers.header_key.match(line)]
        has_from = any(self.markers.header_from.match(line) for line in headers)
        return has_from and len(headers) >= HEADER_LINES_NEEDED

    def _after_attribution(self, index: int) -> int | None:
        last = self._attribution_end(index)
        if last is None:
            return None
        verb = self.markers.attribution_verb.search(self.lines[last])
        start = self.lines[index].split()[0]
        self.note(f"quoted history from '{start} ... {verb.group('verb') if verb else ''}:'")
        if self._quote_follows(last + 1):
            return last + 1  # it only introduces a '>' quote; text below it is the reply
        return len(self.lines)

    def _attribution_end(self, index: int) -> int | None:
        """The last line of an attribution starting at ``index`` (maybe wrapped), or None."""
        joined = ""
        for last in range(index, min(index + ATTRIBUTION_LINES, len(self.lines))):
            piece = self.lines[last].strip()
            joined = f"{joined} {piece}".strip()
            if not piece or len(joined) > MAX_MARKER_CHARS:
                return None
            if self._is_attribution(joined):
                return last
        return None

    def _is_attribution(self, text: str) -> bool:
        """'On <date>, <name> wrote:': a start word, a digit, a verb, a final colon."""
        return (
            text.endswith(":")
            and _DIGIT.search(text) is not None
            and self.markers.attribution_verb.search(text) is not None
            and self.markers.attribution_start.match(text) is not None
        )

    def _quote_follows(self, index: int) -> bool:
        for line in self.lines[index:index + 3]:
            if line.strip():
                return line.lstrip().startswith(">")
        return False

    def _skip_quote(self, index: int) -> int:
        self._drop_quote_header()
        self.note("quoted lines starting with '>'")
        while index < len(self.lines) and self.lines[index].lstrip().startswith(">"):
            index += 1
        return index

    def _drop_quote_header(self) -> None:
        """Drop the line(s) right above a quote that introduce it: a dateless
        'Bob <bob@x> wrote:', or any line shaped like a quote header, so a language
        no vocabulary lists still cuts ('W dniu 20.03.2014 08:48 Bob <b@x> napisał:')."""
        while self.kept and not self.kept[-1].strip():
            self.kept.pop()
        if not self.kept:
            return
        last = self.kept[-1].strip()
        verb = self.markers.attribution_verb.search(last) if len(last) <= MAX_MARKER_CHARS else None
        if verb is not None and last.endswith(":"):
            self.kept.pop()
            self.note(f"quoted history from '... {verb.group('verb')}:'")
            return
        lines = self._header_shape_lines()
        if lines:
            del self.kept[-lines:]
            self.note("quoted history from a quote header ('...:' with a date or address)")

    def _header_shape_lines(self) -> int:
        """How many of the last kept lines (at most ATTRIBUTION_LINES, no blank among
        them) form a quote header by shape; 0 when they do not."""
        if not _HEADER_END.search(self.kept[-1]):
            return 0
        joined = ""
        for count in range(1, min(ATTRIBUTION_LINES, len(self.kept)) + 1):
            piece = self.kept[-count].strip()
            if not piece or len(joined) + len(piece) > MAX_MARKER_CHARS:
                return 0
            joined = f"{piece} {joined}"
            if _ADDRESS.search(joined) or (_TIME.search(joined) and _DATE.search(joined)):
                return count
        return 0


_CUT_REASONS = {
    "original": "quoted history after '{}'",
    "forward": "forwarded message after '{}'",
    "separator": "quoted history after Outlook's '____' separator",
    "signature": "signature after '-- '",
    "footer": "mobile footer '{}'",
}


def _without_sign_off(lines: list[str], markers: ReplyMarkers) -> tuple[list[str], str | None]:
    """``lines`` without a trailing sign-off block, and the sign-off line if one was cut.

    Only when it clearly is one: not the first thing written, followed by at most a
    few short lines (name, title, phone), none carrying a decision word or negation.
    """
    content = [n for n, line in enumerate(lines) if line.strip()]
    for position in content[1:][-(SIGNATURE_LINES + 1):]:
        after = [lines[n] for n in content if n > position]
        if len(after) <= SIGNATURE_LINES and _is_sign_off(lines[position], markers) and all(
            _is_signature_line(line, markers) for line in after
        ):
            return lines[:position], lines[position].strip()
    return lines, None


def _is_sign_off(line: str, markers: ReplyMarkers) -> bool:
    folded = fold(line.strip())
    return (
        len(folded) <= SIGNATURE_LINE_CHARS
        and markers.sign_off.fullmatch(folded) is not None
        and markers.decision_words.search(folded) is None
    )


def _is_signature_line(line: str, markers: ReplyMarkers) -> bool:
    text = line.strip()
    return (
        len(text) <= SIGNATURE_LINE_CHARS
        and not text.endswith("?")
        and markers.decision_words.search(fold(text)) is None
    )


def _tidy(lines: list[str]) -> str:
    """Join the kept lines: trailing spaces and runs of blank lines collapsed, and
    leading/trailing lines of rules and bullets ('* * *', '----') removed."""
    out: list[str] = []
    for line in lines:
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    while out and _JUNK.fullmatch(out[-1]):
        out.pop()
    first = next((n for n, line in enumerate(out) if not _JUNK.fullmatch(line)), len(out))
    return "\n".join(out[first:])
