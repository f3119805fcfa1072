"""The words the parser looks for, per language, as data.

Each built-in language is one TOML file in ``ingest/parse/vocab/`` (named by its
code, e.g. ``de.toml``) with two tables: ``[intent]`` (decision words and the
words that qualify them) and ``[reply]`` (how mail clients mark quoted history,
signatures and subjects). A deployment may add an extra file (``[intents] file``
in ackmail.toml) whose tables are keyed by language code and extend the
built-in lists, or remove words from them::

    [en.intent]
    acknowledge = ["ok"]           # added to the English list

    [en.intent.remove]
    approve = ["lgtm"]             # taken out of it

    [sv.intent]                    # a new language
    approve = ["godkänd"]

Matching is done on folded text (``fold``): case-folded, accents removed, so
"APPROUVÉ" and "approuve" are the same word.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from ingest.config.reader import Section
from ingest.errors import ConfigError
from ingest.parse.base import Intent

VOCAB_DIR = Path(__file__).with_name("vocab")

DECISIONS = ("approve", "reject", "acknowledge")
INTENT_KEYS = (
    *DECISIONS, "negators", "soft_negators", "hedges", "conditions", "not_yet", "doubts",
    "restrictions", "alternatives", "greetings",
    # Read by ingest/parse/short_answer.py: whole-clause answers, instructions after a decision.
    "affirmatives", "negatives", "instructions",
)
REPLY_KEYS = (
    "attribution_start",
    "attribution_verb",
    "header_from",
    "header_keys",
    "original_message",
    "forwarded",
    "mobile_footers",
    "sign_offs",
    "subject_prefixes",
)
# Keys whose words can stop a decision word from counting.
QUALIFIER_KEYS = ("negators", "soft_negators", "hedges", "conditions", "not_yet", "restrictions")
# Keys whose entries are regular expressions rather than literal words.
PATTERN_KEYS = frozenset({"mobile_footers"})
# Keys compared with a whole clause, never searched: a symbol alone ("👍") is an entry.
WHOLE_CLAUSE_KEYS = frozenset({"affirmatives", "negatives"})

_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
_MARKS = re.compile(r"[\u0300-\u036f]+")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'"})


def fold(text: str) -> str:
    """``text`` case-folded, with typographic apostrophes made plain and accents removed."""
    if text.isascii():
        return text.lower()  # the same result, several times faster
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_APOSTROPHES))
    return _MARKS.sub("", folded)


def phrase_pattern(words: Iterable[str]) -> str:
    """A regex matching any of ``words`` as whole words (fold the words first to match
    folded text, or compile with re.IGNORECASE to match as written).

    The words are merged into a prefix tree, so a search costs a few steps per
    position however long the list is; the longest word wins ("best regards" over
    "best"); a space matches any run of whitespace. Word boundaries apply only at
    ends that are word characters, and a word does not end before an apostrophe
    and a letter ("can" is not found in "can't").
    """
    unique = {w for w in words if w}
    at_word = _trie_pattern(sorted(w for w in unique if re.match(r"\w", w)))
    other = _trie_pattern(sorted(w for w in unique if not re.match(r"\w", w)))
    parts = [f"(?<!\\w){at_word}" if at_word else "", other]
    return "|".join(part for part in parts if part) or r"(?!x)x"


def _trie_pattern(words: list[str]) -> str:
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in " ".join(word.split()):
            node = node.setdefault(char, {})
        node[""] = re.search(r"\w$", word) is not None  # end of a word: needs a boundary?
    return _node_pattern(trie) if trie else ""


def _node_pattern(node: dict[str, Any]) -> str:
    branches = [
        (r"\s+" if char == " " else re.escape(char)) + _node_pattern(child)
        for char, child in node.items()
        if char
    ]
    if "" in node:  # last, so that longer words are tried first
        branches.append(r"(?!\w|'\w)" if node[""] else "")
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


@dataclass(frozen=True)
class LanguageWords:
    """One language's lists, keyed by the names in INTENT_KEYS and REPLY_KEYS."""

    code: str
    lists: Mapping[str, tuple[str, ...]]

    def get(self, key: str) -> tuple[str, ...]:
        """The entries under ``key`` (empty when the language has none)."""
        return self.lists.get(key, ())


@dataclass(frozen=True)
class Entry:
    """A decision word: its intent, its spelling in the vocabulary, its languages."""

    intent: Intent
    word: str
    languages: tuple[str, ...]


@dataclass(frozen=True)
class CompiledWords:
    """The ``[intent]`` lists as a few regexes over folded text."""

    keywords: re.Pattern[str]
    entries: Mapping[str, Entry]  # folded, single-spaced word -> entry
    negators: re.Pattern[str]  # every language's, strong and soft
    qualifiers: re.Pattern[str]  # every word that can qualify a decision word, any language
    doubts: re.Pattern[str]  # every language's
    take_back: re.Pattern[str]  # a clause that is nothing but a negator: "Approved... nein,"
    strong_negators: Mapping[str, frozenset[str]]  # per language
    per_language: Mapping[str, Mapping[str, re.Pattern[str]]]  # key -> language -> pattern
    alternatives: re.Pattern[str]
    greeting: re.Pattern[str]
    ends_with_qualifier: re.Pattern[str]
    subject_prefix: re.Pattern[str]

    @property
    def languages(self) -> tuple[str, ...]:
        """Every language of the vocabulary (each key of ``per_language`` has them all)."""
        return tuple(self.per_language["conditions"])

    def search(
        self, key: str, languages: tuple[str, ...], text: str, start: int, end: int
    ) -> re.Match[str] | None:
        """The first match of ``key``'s words of any of ``languages`` in text[start:end]."""
        patterns = self.per_language[key]
        if len(languages) == 1:
            return patterns[languages[0]].search(text, start, end)
        found = (patterns[code].search(text, start, end) for code in languages)
        return min((m for m in found if m), key=lambda m: m.start(), default=None)


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """All languages' words. Compiled once per instance; compare by identity."""

    languages: tuple[LanguageWords, ...]

    def union(self, key: str) -> tuple[str, ...]:
        """Every language's entries under ``key``, in language order, without repeats."""
        return tuple(dict.fromkeys(w for lang in self.languages for w in lang.get(key)))

    def folded(self, *keys: str) -> list[str]:
        """Every language's entries under ``keys``, folded."""
        return [fold(w) for key in keys for w in self.union(key)]

    @cached_property
    def decision_words(self) -> re.Pattern[str]:
        """Any decision word or negator, for folded text: text carrying one is never dropped
        as a signature."""
        return re.compile(phrase_pattern(self.folded(*DECISIONS, "negators", "soft_negators")))

    @cached_property
    def compiled(self) -> CompiledWords:
        """The intent lists compiled for matching (built on first use)."""
        # A line ending in one of these ("I do not") goes on in the next line.
        dangling = phrase_pattern(self.folded("negators", "soft_negators", "hedges"))
        negation = phrase_pattern(self.folded("negators", "soft_negators"))
        prefixes = "|".join(
            map(re.escape, dict.fromkeys(w.casefold() for w in self.union("subject_prefixes")))
        )
        return CompiledWords(
            keywords=re.compile(phrase_pattern(self.folded(*DECISIONS))),
            entries=self._entries(),
            negators=re.compile(phrase_pattern(self.folded("negators", "soft_negators"))),
            qualifiers=re.compile(phrase_pattern(self.folded(*QUALIFIER_KEYS))),
            doubts=re.compile(phrase_pattern(self.folded("doubts"))),
            take_back=re.compile(
                rf"(?:^|[,;:.!?…]|\s[-–—])\s*(?:{negation})\s*(?=[,;:.!?…]|$)", re.MULTILINE
            ),
            strong_negators={
                lang.code: frozenset(" ".join(fold(w).split()) for w in lang.get("negators"))
                for lang in self.languages
            },
            per_language={
                key: {
                    lang.code: re.compile(phrase_pattern(fold(w) for w in lang.get(key)))
                    for lang in self.languages
                }
                for key in ("hedges", "conditions", "not_yet", "restrictions")
            },
            alternatives=re.compile(phrase_pattern(self.folded("alternatives"))),
            greeting=re.compile(
                rf"(?:{phrase_pattern(self.folded('greetings'))})(?:\s+[^\s,.!:;?]+){{0,3}}"
                r"\s*[,.!:;]*"
            ),
            ends_with_qualifier=re.compile(rf"(?:{dangling})$"),
            subject_prefix=re.compile(
                rf"(?<!\w)(?:{prefixes})[ \t]*(?:\[\d+\]|\(\d+\))?[ \t]*:", re.IGNORECASE
            ),
        )

    def _entries(self) -> dict[str, Entry]:
        entries: dict[str, Entry] = {}
        for lang in self.languages:
            for intent in DECISIONS:
                for word in lang.get(intent):
                    key = " ".join(fold(word).split())
                    known = entries.get(key)
                    languages = (*known.languages, lang.code) if known else (lang.code,)
                    entries[key] = Entry(Intent(intent), known.word if known else word, languages)
        return entries


def load_vocabulary(extra: Path | None = None) -> Vocabulary:
    """The built-in languages, extended by the user file ``extra`` if given.

    Without ``extra`` this is the shared built-in vocabulary (read once). Raises
    ConfigError naming the file and key of the first problem found.
    """
    return _load(extra) if extra is not None else default_vocabulary()


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    """The built-in vocabulary, loaded once."""
    return _load(None)


def _load(extra: Path | None) -> Vocabulary:
    languages: dict[str, dict[str, list[str]]] = {}
    for path in sorted(VOCAB_DIR.glob("*.toml")):
        languages[path.stem] = _read_language(Section(_read_toml(path), "", path), {})
    if extra is not None:
        _apply_user_file(languages, extra)
    vocabulary = Vocabulary(
        tuple(
            LanguageWords(code, {key: tuple(words) for key, words in lists.items()})
            for code, lists in languages.items()
        )
    )
    _check_no_word_has_two_intents(vocabulary, extra or VOCAB_DIR)
    return vocabulary


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not a valid vocabulary file ({exc}); fix the TOML syntax"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: the vocabulary file cannot be read ({exc.strerror}); fix [intents] file"
        ) from None


def _apply_user_file(languages: dict[str, dict[str, list[str]]], path: Path) -> None:
    root = Section(_read_toml(path), "", path)
    for code in list(root.data):
        if not _LANGUAGE_CODE.match(code):
            root.fail(code, "is not a language code; name tables like [en.intent] or [de.reply]")
        languages[code] = _read_language(root.section(code), languages.get(code, {}))
    root.finish()


def _read_language(section: Section, base: dict[str, list[str]]) -> dict[str, list[str]]:
    """``base`` extended by the [intent] and [reply] tables of ``section``."""
    lists = {key: list(words) for key, words in base.items()}
    for table, keys in (("intent", INTENT_KEYS), ("reply", REPLY_KEYS)):
        _merge_table(section.section(table), keys, lists)
    section.finish()
    return lists


def _merge_table(table: Section, keys: tuple[str, ...], lists: dict[str, list[str]]) -> None:
    for key in keys:
        added = _entries(table, key)
        lists[key] = list(dict.fromkeys([*lists.get(key, []), *added]))
    if table.has("remove"):
        removals = table.section("remove")
        for key in keys:
            for word in _entries(removals, key):
                kept = [w for w in lists[key] if fold(w) != fold(word)]
                if len(kept) == len(lists[key]):
                    removals.fail(key, f"removes '{word}', which is not in that list")
                lists[key] = kept
        removals.finish()
    table.finish()


def _entries(table: Section, key: str) -> list[str]:
    words: list[str] = table.str_list(key, [])
    for word in words:
        if not word.strip():
            table.fail(key, "contains an empty entry; remove it")
        if key in PATTERN_KEYS:
            _check_pattern(table, key, word)
        elif key not in WHOLE_CLAUSE_KEYS and not re.search(r"\w|[/|]", fold(word)):
            table.fail(key, f"contains '{word}', which has no letter or digit")
    return [word.strip() for word in words]


def _check_pattern(table: Section, key: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        table.fail(key, f"contains '{pattern}', which is not a valid regular expression ({exc})")


def _check_no_word_has_two_intents(vocabulary: Vocabulary, where: Path) -> None:
    owner: dict[str, tuple[str, str]] = {}
    for lang in vocabulary.languages:
        for intent in DECISIONS:
            for word in lang.get(intent):
                first = owner.setdefault(fold(word), (intent, lang.code))
                if first[0] != intent:
                    raise ConfigError(
                        f"{where}: '{word}' is listed as {intent} ({lang.code}) and as "
                        f"{first[0]} ({first[1]}); a word can carry one intent only, remove one"
                    )
