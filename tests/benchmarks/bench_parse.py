"""Parse + classify accuracy and speed: ackmail against talon, email-reply-parser and
mail-parser-reply, on the development corpus (per client shape and overall), then the
held-out corpus's summary.

    # the peers (pyproject's "bench" extra), outside ackmail's environment:
    .venv/bin/pip install --target /tmp/benchlib talon==1.4.4 email-reply-parser==0.5.12 \
        mail-parser-reply==1.36
    PYTHONPATH=/tmp/benchlib .venv/bin/python -m tests.benchmarks.bench_parse [--rounds 5]

The peer pipeline is what a team without ackmail's parser would build: the standard
library's strict parser (policy.default) with get_body(plain, html), the peer's
quotation stripper for the new text, and ackmail's own intent classifier on what it
returns — so the accuracy gap measures reply-text extraction and the speed gap (against
talon) measures the whole hot path. The development corpus is scored by
tests/benchmarks/dev_corpus.py, the held-out one by tests/parse/corpus.py.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from ingest.decide import answered_intent
from ingest.parse.base import Intent, MessageKind, ParsedMessage, SenderInfo
from ingest.parse.intent import classify_intent
from ingest.parse.message import ParseOptions, parse_message
from ingest.parse.vocabulary import load_vocabulary
from ingest.store.models import RequestKind
from tests.benchmarks.dev_corpus import DevCase, DevScores, load_dev_corpus
from tests.parse.corpus import Sample, Scores, load_corpus

Parser = Callable[[bytes], ParsedMessage]
Extractor = Callable[[str, str], str]  # (body text, content type) -> the new text


def ackmail_parser() -> Parser:
    options = ParseOptions()
    return lambda raw: parse_message(raw, options)


def talon_extractor() -> Extractor:
    from talon import quotations  # imported here: the peers are optional

    # talon logs a traceback for each HTML body its lxml cannot search; its result is kept.
    logging.getLogger("talon").setLevel(logging.CRITICAL)
    return lambda text, kind: str(quotations.extract_from(text, kind))


def email_reply_parser_extractor() -> Extractor:
    from email_reply_parser import EmailReplyParser

    return lambda text, _kind: str(EmailReplyParser.parse_reply(text))


def mail_parser_reply_extractor() -> Extractor:
    from mailparser_reply import EmailReplyParser
    from mailparser_reply.constants import MAIL_LANGUAGES

    parser = EmailReplyParser(languages=[code for code in MAIL_LANGUAGES if len(code) == 2])
    return lambda text, _kind: str(parser.parse_reply(text=text))


PEERS = {
    "talon": talon_extractor,
    "email-reply-parser": email_reply_parser_extractor,
    "mail-parser-reply": mail_parser_reply_extractor,
}


def talon_parser(extract: Extractor | None = None) -> Parser:
    extract = extract or talon_extractor()
    vocabulary = load_vocabulary()

    def parse(raw: bytes) -> ParsedMessage:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
        text, kind = (body.get_content(), body.get_content_type()) if body else ("", "text/plain")
        reply = extract(text, kind)
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


def score_dev(parser: Parser, cases: list[DevCase]) -> dict[str, DevScores]:
    """Scores per client shape and overall ("all"); a short "yes" counts as what the
    request asked, as the decide hop reads it."""
    scores: dict[str, DevScores] = {}
    for case in cases:
        parsed = parser(case.raw)
        intent = answered_intent(RequestKind(case.kind), parsed.intent)
        for key in (case.source, "all"):
            scores.setdefault(key, DevScores()).add(case, parsed.reply_text, intent)
    return scores


def per_message_us(parser: Parser, raws: list[bytes], rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        for raw in raws:
            parser(raw)
    return (time.perf_counter() - started) / (rounds * len(raws)) * 1e6


def dev_table(rounds: int, show_misses: bool) -> None:
    """The development corpus's table: each parser per client shape and overall."""
    cases = load_dev_corpus()
    print(f"development corpus: {len(cases)} messages, {len({c.language for c in cases})} "
          "languages (tests/corpus/dev)")
    parsers = {"ackmail": ackmail_parser()}
    for name, extractor in PEERS.items():
        try:
            parsers[name] = talon_parser(extractor())
        except ImportError:
            print(f"{name:<19} not installed: pip install the 'bench' extra")
    for name, parser in parsers.items():
        scores = score_dev(parser, cases)
        for source, score in sorted(scores.items(), key=lambda item: item[0] == "all"):
            print(f"{name:<19} {source:<16} {score.row()}")
        if show_misses and name == "ackmail":
            for line in scores["all"].misses:
                print(f"  miss {line}")
    raws = [case.raw for case in cases]
    timed = {name: per_message_us(parsers[name], raws, rounds)
             for name in ("ackmail", "talon") if name in parsers}
    for name, micros in timed.items():
        print(f"{name:<19} parse+classify   {micros:8.0f} us/message")
    if len(timed) == 2:
        print(f"speed ratio         ackmail / talon = {timed['talon'] / timed['ackmail']:.1f}x")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--misses", action="store_true", help="list ackmail's dev misses")
    args = options.parse_args()
    dev_table(args.rounds, args.misses)
    corpus = load_corpus()
    print(f"held-out corpus: {len(corpus)} messages, {args.rounds} rounds each")
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
