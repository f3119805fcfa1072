"""classify_intent: approve / reject / acknowledge / unknown, and never approve when unsure."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ingest.parse.base import Intent
from ingest.parse.intent import MAX_CHARS, classify_intent, subject_words_added
from ingest.parse.short_answer import without_affirmatives
from ingest.parse.vocabulary import default_vocabulary, fold, load_vocabulary

DATA = Path(__file__).parent / "data"
REQUIRED_LANGUAGES = ("en", "de", "fr", "es", "nl", "pt")
VOCABULARY = default_vocabulary()


def _cases() -> list[dict[str, Any]]:
    with (DATA / "intent_cases.toml").open("rb") as handle:
        cases: list[dict[str, Any]] = tomllib.load(handle)["case"]
    return cases


def _case_id(case: dict[str, Any]) -> str:
    return repr(case["text"] or case.get("subject", ""))[:50]


@pytest.mark.parametrize("case", _cases(), ids=_case_id)
def test_table(case: dict[str, Any]) -> None:
    result = classify_intent(
        case["text"], case.get("subject", ""), request_subject=case.get("request_subject")
    )
    assert result.intent == Intent(case["intent"]), result.reasons
    if "language" in case:
        assert result.language == case["language"]


def test_table_covers_every_language_and_intent() -> None:
    languages = {case.get("language") for case in _cases()}
    intents = {case["intent"] for case in _cases()}
    assert set(REQUIRED_LANGUAGES) <= languages
    assert intents == {intent.value for intent in Intent}


def _words(key: str) -> list[tuple[str, str]]:
    return [(lang.code, word) for lang in VOCABULARY.languages for word in lang.get(key)]


DECISION_WORDS = [
    (code, word, key) for key in ("approve", "reject", "acknowledge") for code, word in _words(key)
]
APPROVE_WORDS = _words("approve")


@pytest.mark.parametrize(("code", "word", "key"), DECISION_WORDS)
def test_every_vocabulary_word_alone_carries_its_intent(code: str, word: str, key: str) -> None:
    for text in (word, word.upper(), f"{word.capitalize()}.", f"Hi Bob,\n\n{word}!\n\nThanks"):
        result = classify_intent(text)
        assert result.intent == Intent(key), (text, result.reasons)
        assert code in {lang.code for lang in VOCABULARY.languages if word in lang.get(key)}


@pytest.mark.parametrize(("code", "word"), APPROVE_WORDS)
def test_a_negated_approve_word_never_approves(code: str, word: str) -> None:
    language = next(lang for lang in VOCABULARY.languages if lang.code == code)
    for negator in (*language.get("negators"), *language.get("soft_negators")):
        for text in (f"{negator} {word}", f"{word} {negator}", f"I {negator} really {word} this"):
            assert classify_intent(text).intent is not Intent.APPROVE, text
    for negator in language.get("negators"):
        assert classify_intent(f"{negator} {word}").intent is Intent.REJECT, (negator, word)


@pytest.mark.parametrize(("code", "word"), APPROVE_WORDS)
def test_an_unsure_approve_word_is_unknown(code: str, word: str) -> None:
    language = next(lang for lang in VOCABULARY.languages if lang.code == code)
    texts = [f"{word}?", f"{word}.\n\n{_words('reject')[0][1]}", f"{word}, {word}? no"]
    texts += [f"{hedge} {word}" for hedge in language.get("hedges")]
    texts += [f"{word} {later}" for later in language.get("not_yet")]
    texts += [f"{word} {condition} the budget allows" for condition in language.get("conditions")]
    texts += [f"{word}. {doubt}" for doubt in VOCABULARY.union("doubts")]
    for text in texts:
        result = classify_intent(text)
        assert result.intent is Intent.UNKNOWN, (text, result.reasons)


@pytest.mark.parametrize(("code", "word"), APPROVE_WORDS)
def test_an_instruction_naming_both_options_never_counts(code: str, word: str) -> None:
    for _, reject in _words("reject")[:5]:
        for joiner in VOCABULARY.union("alternatives"):
            text = f"Reply {word.upper()} {joiner} {reject.upper()}"
            assert classify_intent(text).intent is Intent.UNKNOWN, text


@pytest.mark.parametrize(
    ("text", "subject", "reason"),
    [
        ("Approved, go ahead.", "", "keyword 'approved' in first line"),
        ("Hi Bob,\n\nThanks for this.\nApproved.", "", "keyword 'approved' in line 2"),
        ("not approved", "", "negation 'not' before 'approved' in first line: a refusal"),
        ("approved... actually no, rejected", "", "both approve and reject words: unknown"),
        ("Should I approve?", "", "question with 'approve' in first line: not a decision"),
        ("Reply APPROVE or REJECT", "", "line names several options in first line: an "
                                        "instruction, ignored"),
        ("", "APPROVED: Re: Expense", "subject words added by the replier: 'APPROVED'"),
        ("Thanks!", "", "no approve, reject or acknowledge word found"),
        ("ok", "", "rule 'short affirmative': 'ok' is the whole first clause"),
        ("No, don't deploy", "", "rule 'short negative': 'no' is the whole first clause"),
        ("Rejected - Sarah approved it before", "", "rule 'leading reject': 'rejected' opens "
                                                     "the reply"),
        ("approve? no - reject", "", "rule 'correction': 'no' then a reject, the final word"),
        ("Approve later", "", "'later' with 'approve' in first line: not a decision"),
        ("Maybe. Approved.", "", "doubt 'maybe' in the reply: no approve read, unknown"),
    ],
)
def test_reasons_explain_the_decision(text: str, subject: str, reason: str) -> None:
    assert reason in classify_intent(text, subject).reasons


def test_decision_far_down_a_reply_is_unknown() -> None:
    text = "\n".join(f"Line {n} about the budget." for n in range(8)) + "\nApproved."
    result = classify_intent(text)
    assert result.intent is Intent.UNKNOWN
    assert "decision words only after line 5: unknown" in result.reasons


def test_long_reply_with_a_decision_word_is_unknown() -> None:
    text = "Approved.\n" + "Some discussion of the numbers. " * (MAX_CHARS // 20)
    assert classify_intent(text).intent is Intent.UNKNOWN
    assert classify_intent("Some discussion. " * MAX_CHARS).reasons == (
        "no approve, reject or acknowledge word found",
    )


@pytest.mark.parametrize(
    ("subject", "request_subject", "added"),
    [
        ("APPROVED: Re: Expense report", None, "APPROVED"),
        ("Re: Approval needed: X", None, ""),
        ("Approval needed: X", None, ""),
        ("Re: [R7K2-9QXM] Expense report - APPROVED", "Expense report", "APPROVED"),
        ("RE : AW: [R7K2-9QXM] approved Expense  report", "Expense report", "approved"),
        ("Re[2]: Expense report", "[R7K2-9QXM] Expense report", ""),
        ("rejected Re: something else", "Expense report", "rejected"),
        ("Antw: SV: RES: R: Expense report", "Expense report", ""),
    ],
)
def test_subject_words_added(subject: str, request_subject: str | None, added: str) -> None:
    assert subject_words_added(subject, request_subject) == added


def test_extra_vocabulary_adds_and_removes_words(tmp_path: Path) -> None:
    extra = tmp_path / "intents.toml"
    extra.write_text(
        '[en.intent]\nacknowledge = ["ok"]\n[en.intent.remove]\napprove = ["lgtm"]\n'
        '[sv.intent]\napprove = ["godkänd"]\nnegators = ["inte"]\n',
        encoding="utf-8",
    )
    custom = load_vocabulary(extra)
    assert classify_intent("ok", vocabulary=custom).intent is Intent.ACKNOWLEDGE
    assert classify_intent("lgtm", vocabulary=custom).intent is Intent.UNKNOWN
    assert classify_intent("Godkänd", vocabulary=custom).language == "sv"
    assert classify_intent("inte godkänd", vocabulary=custom).intent is Intent.REJECT
    assert classify_intent("ok").intent is Intent.AFFIRM
    keywords_only = without_affirmatives(custom)
    assert classify_intent("ok", vocabulary=keywords_only).intent is Intent.ACKNOWLEDGE


def test_affirmatives_switched_off_leave_keywords_and_negatives() -> None:
    keywords_only = without_affirmatives(VOCABULARY)
    for text in ("Yes", "OK", "Ja", "👍", "Go ahead"):
        assert classify_intent(text, vocabulary=keywords_only).intent is Intent.UNKNOWN, text
    assert classify_intent("Approved", vocabulary=keywords_only).intent is Intent.APPROVE
    assert classify_intent("No", vocabulary=keywords_only).intent is Intent.REJECT


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("Approved, but please notify on-call first.", "please notify on-call first"),
        ("Genehmigt, aber bitte Ops informieren", "bitte Ops informieren"),
        ("Approuvé, mais merci de prévenir Élodie.", "merci de prévenir Élodie"),
        ("Yes, go ahead, but please tell the on-call team first.",
         "please tell the on-call team first"),
        ("Ja, aber bitte Ops informieren.", "bitte Ops informieren"),
        ("Approved, go ahead.", None),
        ("Approved, but please wait until Monday", None),
    ],
)
def test_an_instruction_after_the_decision_is_the_note(text: str, note: str | None) -> None:
    assert classify_intent(text).note == note


def test_classifies_short_replies_quickly() -> None:
    replies = ["Approved, go ahead.", "not approved", "ack", "Genehmigt.", "Should I approve?"]
    started = time.perf_counter()
    for _ in range(200):
        for reply in replies:
            classify_intent(reply, "Re: [R7K2-9QXM] Approval needed: laptop")
    assert time.perf_counter() - started < 2.0  # ~0.05 s on a developer machine


@pytest.mark.parametrize(
    "text",
    ["approve not " * 20_000, "approved if, " * 15_000, "approve\n" * 25_000,
     "a " * 100_000 + "approved", ("x, " * 3_000 + "approve ") * 2],
)
def test_pathological_input_is_fast(text: str) -> None:
    started = time.perf_counter()
    assert classify_intent(text, text).intent is not Intent.APPROVE
    assert time.perf_counter() - started < 0.5


NON_DECISION_WORDS = sorted(
    {w for key in ("negators", "soft_negators", "hedges", "conditions", "not_yet", "doubts",
                   "alternatives", "greetings") for w in VOCABULARY.union(key)}
    | {"ok", "yes", "sure", "fine", "go ahead", "thanks", "?", ",", ".", "\n", "Re:", "[R7K2-9QXM]"}
)
TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(NON_DECISION_WORDS), max_size=30).map(" ".join),
)


@settings(max_examples=400, deadline=None)
@given(TEXT, TEXT, st.none() | TEXT)
def test_never_raises_and_no_decision_word_never_approves(
    text: str, subject: str, request_subject: str | None
) -> None:
    words = VOCABULARY.compiled
    assume(not words.keywords.search(fold(text)) and not words.keywords.search(fold(subject)))
    result = classify_intent(text, subject, request_subject=request_subject)
    assert result.intent is not Intent.APPROVE
    if result.intent is not Intent.UNKNOWN:  # only a short answer decides without a keyword
        assert result.reasons[-1].startswith(("rule 'short affirmative'", "rule 'short negative'"))


APPROVE_TEXT = st.lists(
    st.sampled_from(NON_DECISION_WORDS + [word for _, word in APPROVE_WORDS[:12]]), max_size=12
).map(" ".join)


@settings(max_examples=400, deadline=None)
@given(APPROVE_TEXT, st.text(max_size=40))
def test_an_approval_always_rests_on_an_approve_word(text: str, subject: str) -> None:
    result = classify_intent(text, subject)
    if result.intent is Intent.APPROVE:
        assert any(reason.startswith("keyword '") for reason in result.reasons)
        assert not any("negation" in reason or "question" in reason for reason in result.reasons)
