"""Integrity checks for the held-out reply corpus (tests/corpus).

The corpus judges the parser, so these tests only check that the data is sound: one label
per message, legal label values, messages the standard library can read, labels that agree
with the messages, and the minimum size of each category.
"""

import functools
import html.parser
import json
import re
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).parent
MESSAGES = CORPUS / "messages"
LABELS: list[dict[str, Any]] = json.loads((CORPUS / "labels.json").read_text(encoding="utf-8"))
BY_FILE = {label["file"]: label for label in LABELS}

KINDS = frozenset({"reply", "auto_reply", "bounce", "receipt", "new"})
INTENTS = frozenset({"approve", "reject", "acknowledge", "unknown"})
LANGUAGES = frozenset({"en", "de", "fr", "es", "nl", "pt"})
CLIENTS = frozenset({
    "outlook-desktop", "outlook-web", "outlook-ios", "outlook-android", "outlook-plain",
    "outlook-mac", "gmail", "gmail-android", "iphone", "apple-mail", "thunderbird", "mutt",
    "roundcube", "evolution", "yahoo", "samsung-email", "zimbra", "gmx",
    "exchange", "postfix", "exim", "sendmail", "qmail", "sieve", "vacation", "otrs", "mailer",
})
FIELDS = {"file", "client", "language", "kind", "intent", "reply_text", "token", "spoof", "note"}
TOKEN = "[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}"
TOKEN_RE = re.compile(f"^{TOKEN}$")
# the places ackmail puts a token: subject tag, body footer, Message-ID, plus-address
TOKEN_PLACES = re.compile(
    rf"\[({TOKEN})\]|Ref: ({TOKEN})\b|<ackmail\.({TOKEN})\.|\+({TOKEN})@", re.IGNORECASE
)
MINIMUMS = {"auto_reply": 12, "bounce": 8, "receipt": 4}


class _TextOfHtml(html.parser.HTMLParser):
    """Visible text of an HTML part: enough to find a label's words in it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("style", "head")
        self.chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "head")
        self.chunks.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def _squash(text: str) -> str:
    return " ".join(text.split())


@functools.cache
def _parse(name: str) -> EmailMessage:
    msg = message_from_bytes((MESSAGES / name).read_bytes(), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _texts(msg: EmailMessage) -> list[str]:
    """Decoded text of every text/* part (HTML reduced to its visible text)."""
    texts = []
    for part in msg.walk():
        if part.get_content_maintype() != "text":
            continue
        content = part.get_content()
        if part.get_content_subtype() == "html":
            parser = _TextOfHtml()
            parser.feed(content)
            content = "".join(parser.chunks)
        texts.append(content)
    return texts


def _everything(msg: EmailMessage) -> str:
    headers = [f"{key}: {value}" for part in msg.walk() for key, value in part.items()]
    return "\n".join(headers + _texts(msg))


def test_labels_are_sorted_and_unique() -> None:
    files = [label["file"] for label in LABELS]
    assert files == sorted(files)
    assert len(files) == len(set(files))


def test_every_message_has_exactly_one_label() -> None:
    on_disk = {path.name for path in MESSAGES.glob("*.eml")}
    assert on_disk == set(BY_FILE)


@pytest.mark.parametrize("label", LABELS, ids=lambda label: label["file"])
def test_label_values_are_allowed(label: dict[str, Any]) -> None:
    assert set(label) == FIELDS
    assert label["kind"] in KINDS
    assert label["intent"] in INTENTS
    assert label["language"] in LANGUAGES
    assert label["client"] in CLIENTS
    assert label["token"] is None or TOKEN_RE.match(label["token"])
    assert isinstance(label["spoof"], bool)
    assert isinstance(label["note"], str)
    assert label["reply_text"] == label["reply_text"].strip()
    if label["kind"] != "reply":
        assert label["intent"] == "unknown"
        assert label["reply_text"] == ""


@pytest.mark.parametrize("name", sorted(BY_FILE))
def test_message_parses_with_the_standard_library(name: str) -> None:
    msg = _parse(name)
    assert msg["From"] is not None and msg["Date"] is not None
    assert _everything(msg)


@pytest.mark.parametrize("name", sorted(BY_FILE))
def test_token_label_matches_the_message(name: str) -> None:
    found = {
        next(group for group in match.groups() if group).upper()
        for match in TOKEN_PLACES.finditer(_everything(_parse(name)))
    }
    expected = BY_FILE[name]["token"]
    assert found == ({expected} if expected else set())


@pytest.mark.parametrize("name", sorted(n for n, label in BY_FILE.items() if label["reply_text"]))
def test_reply_text_is_in_the_message(name: str) -> None:
    bodies = [_squash(text) for text in _texts(_parse(name))]
    for line in filter(None, BY_FILE[name]["reply_text"].splitlines()):
        assert any(_squash(line) in body for body in bodies), line


def test_category_minimums() -> None:
    kinds = Counter(label["kind"] for label in LABELS)
    replies = Counter(label["language"] for label in LABELS if label["kind"] == "reply")
    assert len(LABELS) >= 180
    assert all(replies[language] >= 15 for language in LANGUAGES), replies
    assert all(kinds[kind] >= least for kind, least in MINIMUMS.items()), kinds
