"""The development corpus (tests/corpus/dev): well formed, and ackmail meets its goals on it."""

from __future__ import annotations

from ingest.decide import answered_intent
from ingest.parse.message import ParseOptions, parse_message
from ingest.store.models import RequestKind
from tests.benchmarks.dev_corpus import DevScores, load_dev_corpus

CASES = load_dev_corpus()


def test_the_corpus_covers_twenty_languages_both_kinds_and_every_intent() -> None:
    assert len({case.language for case in CASES}) >= 20
    assert {case.kind for case in CASES} == {"approval", "alert"}
    assert {case.intent.value for case in CASES} == {"approve", "reject", "acknowledge", "unknown"}


def test_ackmail_reads_the_development_corpus() -> None:
    options, scores = ParseOptions(), DevScores()
    for case in CASES:
        parsed = parse_message(case.raw, options)
        scores.add(case, parsed.reply_text, answered_intent(RequestKind(case.kind), parsed.intent))
    assert scores.counts["false_approvals"] == 0, scores.misses
    assert scores.rate("f1") >= 0.95, scores.misses
    assert scores.rate("intent") >= 0.97, scores.misses
