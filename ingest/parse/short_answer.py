"""Rules that read a reply as a person does where keywords alone say ``unknown``.

- A short, unconditional affirmative that is the whole first clause ("Yes", "OK",
  "Go ahead", "Ja", 👍) is ``affirm``: the decide hop maps it per request kind
  (approve an approval request, acknowledge an alert). Off with
  ``[intents] affirmatives = false``.
- A bare negative first clause ("No", "Nein", "No, don't deploy") is a reject.
- A reject word leading the first clause stays a reject whatever follows it
  ("Rejected - Sarah approved this before the freeze"): a reject is never made an
  approval, and a missed approval only costs a "did you mean?" reply.
- A reject after an explicit take-back ("approve? no — reject") is the final word.

Every rule leans to ``unknown``: a question, condition, plan, doubt or negation
near the short answer keeps the reply unknown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, Protocol

from ingest.parse.base import Intent
from ingest.parse.clauses import CLAUSE_BREAK
from ingest.parse.vocabulary import CompiledWords, LanguageWords, Vocabulary, fold

# A reason that keeps an instruction as the note says so with these words before it.
NOTE_MARK = "the instruction after it is kept as the note: "
# Lines after the first that an affirmative's condition or doubt may sit in.
REACH_LINES = 5
_PUNCTUATION = " \t.,;:!\u2026-\u2013\u2014"


class Item(Protocol):
    """One decision word's reading (``intent.Evidence``)."""

    @property
    def intent(self) -> Intent: ...
    @property
    def line(self) -> int: ...


class Reading(NamedTuple):
    """What the keyword pass found in a reply, for the rules here to reconsider."""

    evidence: list[Item]
    lines: list[str]  # meaningful lines, folded
    doubt: str | None
    take_back: str | None


@dataclass(frozen=True)
class ShortWords:
    """The short-answer lists of every language, folded and single-spaced."""

    affirmatives: Mapping[str, str]  # phrase -> the first language that has it
    negatives: Mapping[str, str]
    instructions: re.Pattern[str]


@lru_cache(maxsize=8)
def short_words(vocabulary: Vocabulary) -> ShortWords:
    """The short-answer lists of ``vocabulary`` (built once per vocabulary)."""

    def phrases(key: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for lang in vocabulary.languages:
            for word in lang.get(key):
                found.setdefault(" ".join(fold(word).split()), lang.code)
        return found

    instructions = "|".join(re.escape(w) for w in sorted(phrases("instructions"), key=len)[::-1])
    return ShortWords(
        phrases("affirmatives"),
        phrases("negatives"),
        re.compile(rf"\s*(?:{instructions or '(?!)'})(?!\w)"),
    )


def without_affirmatives(vocabulary: Vocabulary) -> Vocabulary:
    """``vocabulary`` with no affirmatives: only decision words (and "no") decide."""
    return Vocabulary(
        tuple(
            LanguageWords(lang.code, {k: v for k, v in lang.lists.items() if k != "affirmatives"})
            for lang in vocabulary.languages
        )
    )


def instruction_after(
    line: str, restriction: re.Match[str], end: int, words: CompiledWords, short: ShortWords
) -> str | None:
    """The instruction a restriction word opens ("…, but please notify X") up to ``end``,
    else None; one that restricts, delays or sets a condition ("but please wait until
    Monday") is no mere instruction."""
    if short.instructions.match(line, restriction.end()) is None:
        return None
    languages = words.languages
    if any(
        words.search(key, languages, line, restriction.end(), end)
        for key in ("restrictions", "conditions", "not_yet")
    ):
        return None
    return line[restriction.end() : end].strip(_PUNCTUATION) or None


def unfolded(text: str, folded_part: str) -> str:
    """The stretch of ``text`` that folds to ``folded_part``, as written (a note keeps the
    writer's case and accents); ``folded_part`` itself when no stretch does."""
    starts: list[int] = []  # folded offset -> index in text
    pieces: list[str] = []
    for index, char in enumerate(text):
        piece = fold(char)
        starts += [index] * len(piece)
        pieces.append(piece)
    at = "".join(pieces).find(folded_part)
    if at < 0 or not folded_part:
        return folded_part
    end = at + len(folded_part)
    return text[starts[at] : starts[end] if end < len(starts) else len(text)]


def reconsider(
    intent: Intent,
    summary: str | None,
    reading: Reading,
    words: CompiledWords,
    short: ShortWords,
) -> tuple[Intent, str | None, str | None]:
    """The intent after the rules here, the reason naming the rule that decided, and the
    language of a short answer (None: the decision words tell)."""
    if intent is not Intent.UNKNOWN or reading.doubt or not reading.lines:
        return intent, summary, None
    first = reading.lines[0]
    clause = _first_clause(first)
    decided = (
        _lead_reject(reading, clause, words)
        or _corrected_reject(reading, short)
        or _short_negative(reading, clause, words, short)
        or _short_affirmative(reading, clause, words, short)
    )
    if decided is None:
        return intent, summary, None
    said = clause.strip(_PUNCTUATION)
    return (*decided, short.affirmatives.get(said) or short.negatives.get(said))


def _first_clause(line: str) -> str:
    end = CLAUSE_BREAK.search(line)
    return " ".join(line[: end.start() if end else len(line)].split())


def _lead_reject(
    reading: Reading, clause: str, words: CompiledWords
) -> tuple[Intent, str] | None:
    leading = reading.evidence[0] if reading.evidence else None
    if leading is None or leading.line != 0 or leading.intent is not Intent.REJECT:
        return None
    found = words.keywords.search(clause)
    if found is None or words.negators.search(clause) or "?" in reading.lines[0][: len(clause) + 1]:
        return None
    return Intent.REJECT, f"rule 'leading reject': '{found.group(0)}' opens the reply"


def _corrected_reject(reading: Reading, short: ShortWords) -> tuple[Intent, str] | None:
    decisive = [item for item in reading.evidence if item.line < REACH_LINES]
    if not decisive or decisive[-1].intent is not Intent.REJECT:
        return None
    clauses = (c.strip(_PUNCTUATION) for line in reading.lines[:REACH_LINES]
               for c in CLAUSE_BREAK.split(line))
    correction = reading.take_back or next((c for c in clauses if c in short.negatives), None)
    if correction is None:
        return None
    return Intent.REJECT, f"rule 'correction': '{correction}' then a reject, the final word"


def _short_negative(
    reading: Reading, clause: str, words: CompiledWords, short: ShortWords
) -> tuple[Intent, str] | None:
    if clause.strip(_PUNCTUATION) not in short.negatives:
        return None
    if any(item.intent is not Intent.REJECT for item in reading.evidence):
        return None
    if _qualified(reading, len(clause), words, ("conditions", "not_yet")):
        return None
    return Intent.REJECT, f"rule 'short negative': '{clause}' is the whole first clause"


def _short_affirmative(
    reading: Reading, clause: str, words: CompiledWords, short: ShortWords
) -> tuple[Intent, str] | None:
    if reading.evidence or clause.strip(_PUNCTUATION) not in short.affirmatives:
        return None
    first = reading.lines[0]
    if reading.take_back or words.negators.search(first, len(clause)):
        return None
    languages = words.languages
    restriction = words.search("restrictions", languages, first, len(clause), len(first))
    note = instruction_after(first, restriction, len(first), words, short) if restriction else None
    # "Yes, go ahead, but please tell the on-call team": the instruction is kept as the
    # note and is no qualifier of the answer; every other line still is.
    lines = [first[: restriction.start()], *reading.lines[1:]] if restriction and note else None
    keys = ("conditions", "not_yet", "hedges", "restrictions")
    if _qualified(reading, len(clause), words, keys, lines):
        return None
    reason = f"rule 'short affirmative': '{clause}' is the whole first clause"
    return Intent.AFFIRM, f"{reason}; {NOTE_MARK}'{note}'" if note else reason


def _qualified(
    reading: Reading,
    start: int,
    words: CompiledWords,
    keys: tuple[str, ...],
    lines: list[str] | None = None,
) -> bool:
    """A question, or a condition, plan or restriction word, in the first lines after the
    answer's own words (the "si" of "Sí" is no condition)."""
    text = "\n".join((reading.lines if lines is None else lines)[:REACH_LINES])
    if "?" in text:
        return True
    languages = words.languages
    return any(words.search(key, languages, text, start, len(text)) for key in keys)
