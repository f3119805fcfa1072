"""Where a reply line's sentences and clauses start and end, around a decision word."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import NamedTuple

from ingest.parse.vocabulary import Entry

SENTENCE_BREAK = re.compile(r"[.!?\u2026]+(?=\s|$)")
CLAUSE_BREAK = re.compile(r"[,;:()\[\]]|[.!?\u2026]+(?=\s|$)|\s[-\u2013\u2014]+(?=\s|$)")


class Span(NamedTuple):
    """A decision word found in a line."""

    entry: Entry
    start: int
    end: int


@dataclass(frozen=True)
class Breaks:
    """Where the sentences (or clauses) of a line end, for finding the one around a word."""

    starts: list[int]
    ends: list[int]
    length: int

    @classmethod
    def of(cls, pattern: re.Pattern[str], line: str) -> Breaks:
        found = list(pattern.finditer(line))
        return cls([m.start() for m in found], [m.end() for m in found], len(line))

    def around(self, start: int, end: int) -> tuple[int, int]:
        """Start and end of the sentence (or clause) holding line[start:end]."""
        before = bisect_right(self.ends, start)
        after = bisect_left(self.starts, end)
        return (
            self.ends[before - 1] if before else 0,
            self.starts[after] if after < len(self.starts) else self.length,
        )


@dataclass(frozen=True)
class Layout:
    """A line with its sentence and clause breaks."""

    line: str
    sentences: Breaks
    clauses: Breaks

    @classmethod
    def of(cls, line: str) -> Layout:
        return cls(line, Breaks.of(SENTENCE_BREAK, line), Breaks.of(CLAUSE_BREAK, line))

    def is_question(self, span: Span) -> bool:
        after = bisect_left(self.sentences.starts, span.end)
        return (
            after < len(self.sentences.starts)
            and "?" in self.line[self.sentences.starts[after] : self.sentences.ends[after]]
        )
