"""The parser judged on the held-out corpus: zero false approvals, and accuracy floors.

The floors are set a little below what the parser measured when they were
written, so a regression fails while honest noise does not; the report line is
printed with -s (or in the failure message).
"""

from __future__ import annotations

import pytest

from ingest.parse.message import ParseOptions, parse_message
from tests.parse.corpus import Scores, load_corpus


@pytest.fixture(scope="module")
def scores() -> Scores:
    options = ParseOptions()
    result = Scores()
    for sample in load_corpus():
        result.add(sample, parse_message(sample.raw, options))
    print("\ncorpus:", result.summary())
    return result


def test_no_false_approvals(scores: Scores) -> None:
    assert scores.false_approvals == [], scores.summary()


def test_intent_accuracy(scores: Scores) -> None:
    assert scores.intent_accuracy >= 0.88, "\n".join([scores.summary(), *scores.misses])


def test_kind_accuracy(scores: Scores) -> None:
    assert scores.kind_accuracy >= 0.97, "\n".join([scores.summary(), *scores.misses])


def test_reply_text_f1(scores: Scores) -> None:
    assert scores.reply_f1 >= 0.90, scores.summary()


def test_token_found(scores: Scores) -> None:
    assert scores.token_accuracy >= 0.97, scores.summary()
