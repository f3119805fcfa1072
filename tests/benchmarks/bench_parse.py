"""Parse + classify throughput and accuracy on the corpus: ackmail against talon, one run.

    .venv/bin/pip install talon==1.4.4      # the peer (heavy: numpy, scipy, scikit-learn)
    .venv/bin/python -m tests.benchmarks.bench_parse [--rounds 20]

The peer pipeline is what a team without ackmail's parser would build: the standard
library's strict parser (policy.default) with get_body(plain, html), talon's
quotation stripper for the new text, and ackmail's own intent classifier on what
talon returns — so the accuracy gap measures reply-text extraction and the speed
gap measures the whole hot path. Both are scored by tests/parse/corpus.py.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import time
from collections.abc import Callable
from dataclasses import replace

from ingest.parse.base import Intent, MessageKind, ParsedMessage, SenderInfo
from ingest.parse.intent import classify_intent
from ingest.parse.message import ParseOptions, parse_message
from ingest.parse.vocabulary import load_vocabulary
from tests.parse.corpus import Sample, Scores, load_corpus

Parser = Callable[[bytes], ParsedMessage]


def ackmail_parser() -> Parser:
    options = ParseOptions()
    return lambda raw: parse_message(raw, options)


def talon_parser() -> Parser:
    from talon import quotations  # imported here: the peer is optional

    vocabulary = load_vocabulary()

    def parse(raw: bytes) -> ParsedMessage:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
        text, kind = (body.get_content(), body.get_content_type()) if body else ("", "text/plain")
        reply = quotations.extract_from(text, kind)
        subject = str(message.get("subject", ""))
        result = classify_intent(reply, subject, vocabulary=vocabulary)
        reply_kind = MessageKind.REPLY if message.get("in-reply-to") else MessageKind.NEW
        blank = ParsedMessage(None, None, (), subject, SenderInfo(None), (), None, reply_kind,
                              text, reply, Intent.UNKNOWN)
        return replace(blank, intent=result.intent if reply_kind == MessageKind.REPLY else
                       Intent.UNKNOWN)

    return parse


def measure(parser: Parser, corpus: list[Sample], rounds: int) -> tuple[float, Scores]:
    scores = Scores()
    for sample in corpus:
        scores.add(sample, parser(sample.raw))
    started = time.perf_counter()
    for _ in range(rounds):
        for sample in corpus:
            parser(sample.raw)
    elapsed = time.perf_counter() - started
    return rounds * len(corpus) / elapsed, scores


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=20)
    args = options.parse_args()
    corpus = load_corpus()
    print(f"corpus: {len(corpus)} messages, {args.rounds} rounds each")
    rate, scores = measure(ackmail_parser(), corpus, args.rounds)
    print(f"ackmail      {rate:8.0f} msg/s   {scores.summary()}")
    try:
        peer_rate, peer_scores = measure(talon_parser(), corpus, args.rounds)
    except ImportError:
        print("talon        not installed: .venv/bin/pip install talon==1.4.4")
        return
    print(f"talon peer   {peer_rate:8.0f} msg/s   {peer_scores.summary()}")
    print(f"speed ratio  ackmail / talon = {rate / peer_rate:.1f}x")


if __name__ == "__main__":
    main()
