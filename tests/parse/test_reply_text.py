"""extract_reply: what the sender wrote, without quoted history, signatures or footers."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.parse.reply_text import extract_reply
from ingest.parse.vocabulary import load_vocabulary

DATA = Path(__file__).parent / "data"


def _cases() -> list[dict[str, Any]]:
    with (DATA / "reply_bodies.toml").open("rb") as handle:
        cases: list[dict[str, Any]] = tomllib.load(handle)["case"]
    return cases


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case["name"])
def test_extracts_what_the_sender_wrote(case: dict[str, Any]) -> None:
    assert extract_reply(case["body"]).text == case["expected"].strip("\n")


def test_dev_set_covers_clients_and_languages() -> None:
    names = " ".join(case["name"] for case in _cases())
    assert len(_cases()) >= 40
    for marker in ("gmail", "outlook", "iphone", "thunderbird", "-de", "-fr", "-es", "-nl", "-pt"):
        assert marker in names


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("Yes.\n\nOn Mon, Nov 2, 2026 at 10:00 AM Bob <b@x.com> wrote:\nold",
         "quoted history from 'On ... wrote:'"),
        ("Ja.\n\nAm 02.11.2026 um 10:00 schrieb Bob <b@x.de>:\n> alt",
         "quoted history from 'Am ... schrieb:'"),
        ("Oui.\n\nLe 2 nov. 2026 à 10:00, Bob <b@x.fr> a écrit :\n> vieux",
         "quoted history from 'Le ... a écrit:'"),
        ("ok\n> quoted", "quoted lines starting with '>'"),
        ("ok\n\n-- \nBob", "signature after '-- '"),
        ("ok\n\nSent from my iPhone", "mobile footer 'Sent from my iPhone'"),
        ("ok\n\nVon meinem iPhone gesendet", "mobile footer 'Von meinem iPhone gesendet'"),
        ("ok\n\nThanks,\nBob", "sign-off block 'Thanks,'"),
        ("ok\n\n-----Original Message-----\nFrom: a",
         "quoted history after '-----Original Message-----'"),
        ("ok\n\nDe : Bob\nEnvoyé : lundi\nÀ : Alice\nObjet : x",
         "quoted history from the 'De:' header block"),
        ("ok\n\nBegin forwarded message:\n\nFrom: a",
         "forwarded message after 'Begin forwarded message:'"),
        ("ok\n" + "_" * 32 + "\nFrom: a", "quoted history after Outlook's '____' separator"),
    ],
)
def test_says_what_it_removed(body: str, reason: str) -> None:
    assert reason in extract_reply(body).reasons


def test_nothing_removed_gives_no_reasons() -> None:
    result = extract_reply("Approved, go ahead.\nSecond line.")
    assert result.text == "Approved, go ahead.\nSecond line."
    assert result.reasons == ()


def test_attribution_without_quote_cuts_everything_after() -> None:
    body = "Top.\n\nOn Mon, Nov 2, 2026 at 10:00 AM Bob <b@x.com> wrote:\n\nUnquoted history.\n"
    assert extract_reply(body).text == "Top."


def test_extra_vocabulary_teaches_a_new_client_language(tmp_path: Path) -> None:
    extra = tmp_path / "intents.toml"
    extra.write_text(
        '[lt.reply]\nattribution_verb = ["rašė"]\n'
        'mobile_footers = ["Išsiųsta iš mano .{1,40}"]\n',
        encoding="utf-8",
    )
    body = "Patvirtinta.\n\nIšsiųsta iš mano iPhone\n\n2026-11-02 10:00 Bob <b@x.lt> rašė:\n> x"
    # The attribution is cut by its shape alone; only the vocabulary knows the footer.
    assert extract_reply(body).text == "Patvirtinta.\n\nIšsiųsta iš mano iPhone"
    assert extract_reply(body, vocabulary=load_vocabulary(extra)).text == "Patvirtinta."


# Hostile bodies of about 200 KB, built so that a naive regex or a quadratic loop
# would take seconds or worse.
PATHOLOGICAL = {
    "attribution-lookalikes": ("On 1 wrote wrote wrote wrote wrote wrote wrote wrote x\n" * 4000),
    "one-huge-line": "On " * 70_000,
    "colon-line-of-verbs": "On 1 " + "wrote " * 35_000 + ":",
    "from-lines-without-block": "From: a\nnot a header\n" * 10_000,
    "quote-markers": ">" * 200_000,
    "alternating-quotes": "> q\nnew\n" * 25_000,
    "leading-rules": "----\n" * 40_000 + "text",
    "sign-off-lookalikes": "thanks\n" * 30_000,
    "dashes": "-" * 200_000,
    "underscores-and-spaces": "_ " * 100_000,
}


@pytest.mark.parametrize("body", PATHOLOGICAL.values(), ids=list(PATHOLOGICAL))
def test_pathological_200kb_body_is_fast(body: str) -> None:
    assert len(body) >= 150_000
    # CPU time, not wall time: a bound on the work, whatever else the machine is running.
    started = time.process_time()
    extract_reply(body)
    assert time.process_time() - started < 0.5


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab >-_:\n\r\t1Oon wrote:From:Sent:To:éß"), max_size=400))
def test_never_raises_and_never_invents_text(body: str) -> None:
    result = extract_reply(body)
    source = {line.strip() for line in body.splitlines()}
    assert all(line.strip() in source for line in result.text.splitlines())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_on_any_text(body: str) -> None:
    assert isinstance(extract_reply(body).text, str)
