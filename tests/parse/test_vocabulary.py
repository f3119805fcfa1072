"""Vocabulary files: loading, the user's extra file, validation errors, matching helpers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.errors import ConfigError
from ingest.parse.vocabulary import (
    DECISIONS,
    VOCAB_DIR,
    default_vocabulary,
    fold,
    load_vocabulary,
    phrase_pattern,
)

REQUIRED_LANGUAGES = ("en", "de", "fr", "es", "nl", "pt")


def test_every_required_language_has_its_lists() -> None:
    languages = {lang.code: lang for lang in default_vocabulary().languages}
    for code in REQUIRED_LANGUAGES:
        for key in (*DECISIONS, "negators", "hedges", "conditions", "greetings"):
            assert languages[code].get(key), (code, key)
        for key in ("attribution_start", "attribution_verb", "header_from", "header_keys",
                    "original_message", "mobile_footers", "sign_offs", "subject_prefixes"):
            assert languages[code].get(key), (code, key)


def test_languages_are_the_files_in_the_vocab_folder() -> None:
    codes = {lang.code for lang in default_vocabulary().languages}
    assert codes == {path.stem for path in VOCAB_DIR.glob("*.toml")}


def test_built_in_vocabulary_is_loaded_once() -> None:
    assert load_vocabulary() is default_vocabulary()
    assert default_vocabulary().compiled is default_vocabulary().compiled


@pytest.mark.parametrize(
    ("text", "folded"),
    [("APPROUVÉ", "approuve"), ("Don\u2019t", "don't"), ("Straße", "strasse"),
     ("NÃO", "nao"), ("plain ascii", "plain ascii"), ("ﬁne", "fine")],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("approved", ["approved"]),
        ("disapproved", []),
        ("i can't", ["can't"]),
        ("i can", ["can"]),
        ("best  regards", ["best  regards"]),
        ("best wishes", ["best"]),
        ("'approve'", ["approve"]),
        ("approve/reject", ["approve", "/", "reject"]),
        ("n'approuve", ["n'", "approuve"]),
    ],
)
def test_phrase_pattern_matches_whole_words_longest_first(text: str, found: list[str]) -> None:
    words = ["approve", "approved", "reject", "can", "can't", "best", "best regards", "/", "n'",
             "approuve"]
    assert [m.group(0) for m in re.finditer(phrase_pattern(words), text)] == found


def test_phrase_pattern_of_nothing_matches_nothing() -> None:
    assert re.search(phrase_pattern([]), "anything at all") is None


def test_user_file_extends_removes_and_adds_languages(tmp_path: Path) -> None:
    extra = tmp_path / "intents.toml"
    extra.write_text(
        '[en.intent]\napprove = ["ship it"]\n[en.intent.remove]\napprove = ["LGTM"]\n'
        '[en.reply]\nsign_offs = ["ciao for now"]\n[sv.intent]\napprove = ["godkänd"]\n',
        encoding="utf-8",
    )
    vocabulary = load_vocabulary(extra)
    english = next(lang for lang in vocabulary.languages if lang.code == "en")
    assert "ship it" in english.get("approve")
    assert "lgtm" not in english.get("approve")
    assert "ciao for now" in english.get("sign_offs")
    assert "approved" in english.get("approve")
    assert "godkänd" in vocabulary.union("approve")
    assert vocabulary is not default_vocabulary()
    assert "lgtm" in default_vocabulary().union("approve")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[en.intent\n", "not a valid vocabulary file"),
        ("[en.intent]\napprov = [\"x\"]\n", "[en.intent] key 'approv' is not a known setting"),
        ("[en.intent]\napprove = \"x\"\n", "[en.intent] key 'approve' must be a list of strings"),
        ("[en.intent]\napprove = [1]\n", "[en.intent] key 'approve' must be a list of strings"),
        ("[en.intent]\napprove = [\"  \"]\n", "key 'approve' contains an empty entry"),
        ("[en.intent]\napprove = [\"!!\"]\n", "key 'approve' contains '!!', which has no letter"),
        ("[en.reply]\nmobile_footers = [\"Sent (\"]\n", "key 'mobile_footers' contains 'Sent ('"),
        ("[english.intent]\napprove = [\"x\"]\n", "key 'english' is not a language code"),
        ("[en]\nwords = [\"x\"]\n", "[en] key 'words' is not a known setting"),
        ("[en.intent.remove]\napprove = [\"nope\"]\n", "removes 'nope', which is not in that list"),
        ("[en.intent]\nreject = [\"approved\"]\n", "'approved' is listed as reject (en) and as "
                                                   "approve (en)"),
        ("[de.intent]\napprove = [\"abgelehnt\"]\n", "a word can carry one intent only"),
    ],
)
def test_a_bad_user_file_names_file_and_key(tmp_path: Path, content: str, message: str) -> None:
    extra = tmp_path / "intents.toml"
    extra.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_vocabulary(extra)
    assert str(extra) in str(error.value)
    assert message in str(error.value)


def test_a_missing_user_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_vocabulary(tmp_path / "absent.toml")
