"""The held-out corpus (tests/corpus) and the scores the parser gets on it.

Shared by the accuracy test and the parse benchmark so both judge the same way.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.parse.base import Intent, ParsedMessage
from ingest.parse.tokens import find_tokens

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Sample:
    """One corpus message and its human label."""

    file: str
    raw: bytes
    label: dict[str, Any]


def load_corpus() -> list[Sample]:
    """Every labelled message, in file order."""
    labels = json.loads((CORPUS / "labels.json").read_text(encoding="utf-8"))
    return [Sample(item["file"], (CORPUS / "messages" / item["file"]).read_bytes(), item)
            for item in labels]


def token_f1(predicted: str, expected: str) -> float:
    """Bag-of-words F1 between two texts (1.0 when both are empty)."""
    got, want = Counter(_WORD.findall(predicted.lower())), Counter(_WORD.findall(expected.lower()))
    if not got and not want:
        return 1.0
    overlap = sum((got & want).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(got.values()), overlap / sum(want.values())
    return 2 * precision * recall / (precision + recall)


@dataclass
class Scores:
    """Accuracy of kind, intent and token, reply-text F1, and the false approvals."""

    total: int = 0
    kind_right: int = 0
    intent_right: int = 0
    token_right: int = 0
    f1_sum: float = 0.0
    replies: int = 0
    false_approvals: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def add(self, sample: Sample, parsed: ParsedMessage) -> None:
        label = sample.label
        self.total += 1
        self.kind_right += parsed.kind.value == label["kind"]
        self.intent_right += parsed.intent.value == label["intent"]
        found = find_tokens(parsed)
        self.token_right += (found[0].token if found else None) == label["token"]
        if label["kind"] == "reply":
            self.replies += 1
            self.f1_sum += token_f1(parsed.reply_text, label["reply_text"])
        if parsed.intent == Intent.APPROVE and label["intent"] != "approve":
            self.false_approvals.append(sample.file)
        if parsed.intent.value != label["intent"] or parsed.kind.value != label["kind"]:
            self.misses.append(f"{sample.file}: got {parsed.kind.value}/{parsed.intent.value}, "
                               f"want {label['kind']}/{label['intent']}")

    @property
    def intent_accuracy(self) -> float:
        return self.intent_right / self.total

    @property
    def kind_accuracy(self) -> float:
        return self.kind_right / self.total

    @property
    def token_accuracy(self) -> float:
        return self.token_right / self.total

    @property
    def reply_f1(self) -> float:
        return self.f1_sum / self.replies

    def summary(self) -> str:
        return (f"{self.total} messages: intent {self.intent_accuracy:.1%}, kind "
                f"{self.kind_accuracy:.1%}, token {self.token_accuracy:.1%}, reply-text F1 "
                f"{self.reply_f1:.3f} over {self.replies} replies, false approvals "
                f"{len(self.false_approvals)}")
