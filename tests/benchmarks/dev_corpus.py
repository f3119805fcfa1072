"""The development corpus (tests/corpus/dev): hand-written replies in the shape real
clients produce, built into messages, and the scores a reply parser gets on them.

Unlike the held-out corpus (tests/corpus/messages), these cases may be read and tuned on.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.parse.base import Intent
from tests.parse.corpus import token_f1

DEV = Path(__file__).resolve().parents[1] / "corpus" / "dev"
REQUESTS = {
    "approval": ["Approval needed: deploy 4.2 to production (ref R7K2-9QXM).",
                 "Reply APPROVE or REJECT."],
    "alert": ["Alert: disk /var is 97% full on db-2 (ref R7K2-9QXM).", "Reply ACK to acknowledge."],
}
_RULE = "_" * 32


@dataclass(frozen=True)
class DevCase:
    """One built message: where its shape comes from, and what a reader records."""

    source: str  # the client shape: gmail, outlook-web, outlook-desktop
    language: str
    kind: str  # the request answered: approval or alert
    raw: bytes
    reply_text: str
    intent: Intent


def _bodies(text: str, kind: str, lang: dict[str, object]) -> dict[str, str]:
    request = REQUESTS[kind]
    quoted = "\n".join(f"> {line}" for line in request)
    header = "\n".join(lang["outlook"])  # type: ignore[arg-type]
    return {
        "gmail": f"{text}\n\n{lang['attribution']}\n\n{quoted}\n",
        "outlook-web": f"{text}\n\n{_RULE}\n{header}\n\n" + "\n".join(request) + "\n",
        "outlook-desktop": f"{text}\n\n{header}\n\n" + "\n".join(request) + "\n",
    }


def _message(body: str, number: int, html: bool = False) -> bytes:
    return (
        "From: Anna Berg <anna@example.test>\r\nTo: approvals@example.test\r\n"
        f"Subject: RE: Request [R7K2-9QXM]\r\nMessage-ID: <dev{number}@mail.example.test>\r\n"
        "In-Reply-To: <ackmail.R7K2-9QXM.5f3a9c21@approvals.example.test>\r\n"
        "Date: Mon, 7 Dec 2026 09:20:00 +0000\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/{'html' if html else 'plain'}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        + body.replace("\n", "\r\n")
    ).encode("utf-8")


def _load(name: str) -> dict[str, list[dict[str, Any]]]:
    with (DEV / name).open("rb") as handle:
        return tomllib.load(handle)


def load_dev_corpus() -> list[DevCase]:
    """Every reply of replies.toml under each client's quote shape, then the whole bodies
    of replies.toml and of the public fixtures (public.toml)."""
    data = _load("replies.toml")
    cases: list[DevCase] = []
    for lang in data["lang"]:
        for reply in lang["replies"]:
            for source, body in _bodies(reply["text"], reply["kind"], lang).items():
                raw = _message(body, len(cases))
                cases.append(DevCase(source, lang["code"], reply["kind"], raw, reply["text"],
                                     Intent(reply["intent"])))
    for case in data["case"] + _load("public.toml")["case"]:
        raw = _message(case["body"], len(cases), case.get("html", False))
        cases.append(DevCase(case["source"], case["language"], case["kind"], raw,
                             case["reply_text"], Intent(case["intent"])))
    return cases


def exact(predicted: str, expected: str) -> bool:
    """Whether two texts are the same words, whitespace aside."""
    return " ".join(predicted.split()) == " ".join(expected.split())


@dataclass
class DevScores:
    """Reply-text token F1 and exact matches, intent accuracy and false approvals."""

    f1_sum: float = 0.0
    # "total", "exact", "intent" (right) and "false approvals", counted.
    counts: Counter[str] = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)

    def add(self, case: DevCase, reply_text: str, intent: Intent) -> None:
        same = exact(reply_text, case.reply_text)
        self.f1_sum += token_f1(reply_text, case.reply_text)
        self.counts.update(total=1, exact=same, intent=intent is case.intent, false_approvals=(
            intent is Intent.APPROVE and case.intent is not Intent.APPROVE))
        if intent is not case.intent or not same:
            shown = re.sub(r"\s+", " ", reply_text)[:60]
            self.misses.append(f"{case.source}/{case.language}: {case.reply_text!r} -> "
                               f"{intent.value} {shown!r}")

    def rate(self, key: str) -> float:
        """``key``'s count per message ("f1": the mean token F1)."""
        total = self.counts["total"] or 1
        return (self.f1_sum if key == "f1" else self.counts[key]) / total

    def row(self) -> str:
        return (f"F1 {self.rate('f1'):.3f}  exact {self.rate('exact'):.3f}  "
                f"intent {self.rate('intent'):.3f}  "
                f"false approvals {self.counts['false_approvals']}")
