"""Intent classification: approve, reject, acknowledge or unknown, from a reply's text.

A wrong "approve" is the worst mistake ackmail can make, so every rule leans to
``unknown``:

- Only explicit decision words count (vocabulary files); a bare "ok" or "yes" does not.
- A decision word in a question ("approve?"), with a condition ("approved if ..."),
  put off ("not yet", "approve later") or after a hedge ("please approve", "will
  approve", "reply APPROVE") is no decision, and makes the whole reply unknown.
- A doubt anywhere ("maybe", "not sure") rules out approve and reject.
- A negation in its clause means no approval: a refusal (reject) when a strong
  negator of its language stands just before it ("not approved", "kann ich nicht
  genehmigen"), else unknown. A negated reject or acknowledge is unknown.
- A line naming two intents with "or" between them ("Reply APPROVE or REJECT") is an
  instruction that slipped through quoting: it is ignored.
- Approve and reject anywhere in the reply or its added subject words: unknown.
  Acknowledge words beside a decision do not contradict it (deciding implies reading).
- The decision must be in the first few meaningful lines (greetings skipped); later
  lines can only veto it. Long replies are unknown.
- Subject: only words the replier added count (``subject_words_added``).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import NamedTuple

from ingest.parse.base import Intent, IntentResult
from ingest.parse.clauses import Layout, Span
from ingest.parse.short_answer import (
    NOTE_MARK,
    Reading,
    ShortWords,
    instruction_after,
    reconsider,
    short_words,
    unfolded,
)
from ingest.parse.vocabulary import CompiledWords, Vocabulary, default_vocabulary, fold

# Lines (after greetings) that may carry the decision; later lines can only veto it.
DECISIVE_LINES = 5
# A reply longer than this is no short decision: unknown if it has any decision word.
# (This also bounds the work hostile input can cause.)
MAX_LINES = 40
MAX_CHARS = 4_000
# More decision words than this in one line: unknown, without reading each.
MAX_WORDS_PER_LINE = 12
# A soft-wrapped line is at least this long; a shorter line ended where the writer ended it.
WRAP_WIDTH = 50
# Words allowed between a strong negator and the approval it refuses ("can't really approve").
NEGATION_REACH = 2

_ENDS_SENTENCE = (".", "!", "?", ":", ";", ",")
_TAG = re.compile(r"\[[^\[\]\s]{1,40}\]")
_SUBJECT_SEPARATORS = " :-|,;/\u2013\u2014"
# Links and addresses are no words of the replier ("https://x/approve?id=1", "approve@corp").
_LINKS = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.|mailto:)\S*|\S+@\S+")
_WORD = re.compile(r"\w+")


class Evidence(NamedTuple):
    """What one decision word says. ``intent`` is UNKNOWN when it makes the reply unsure."""

    intent: Intent
    reason: str
    languages: tuple[str, ...] = ()
    line: int = 0  # 0-based meaningful line; -1 for the subject


def classify_intent(
    reply_text: str,
    subject: str = "",
    *,
    request_subject: str | None = None,
    vocabulary: Vocabulary | None = None,
) -> IntentResult:
    """What ``reply_text`` (and the words the replier added to ``subject``) decide."""
    vocabulary = vocabulary or default_vocabulary()
    words, short = vocabulary.compiled, short_words(vocabulary)
    reasons: list[str] = []
    evidence, lines = _read_body(reply_text, words, short, reasons)
    added = subject_words_added(subject, request_subject, vocabulary=vocabulary)
    if added:
        reasons.append(f"subject words added by the replier: '{added}'")
        evidence += _read_line(_LINKS.sub(" ", fold(added[:MAX_CHARS])), -1, words, short, reasons)
    folded = f"{fold(reply_text[:MAX_CHARS])}\n{fold(added)}"
    doubt = words.doubts.search(folded)
    take_back = words.take_back.search(folded)
    reading = Reading(
        list(evidence),
        lines,
        # Whole-text matches may span lines; a reason stays on one.
        " ".join(doubt.group(0).split()) if doubt else None,
        " ".join(take_back.group(0).split()).strip(" ,;:.!?") if take_back else None,
    )
    intent, summary, spoken = reconsider(
        *_decide(evidence, reading.doubt, reading.take_back), reading, words, short
    )
    if summary:
        reasons.append(summary)
    notes = (n for n in map(_note, reasons) if n) if intent is not Intent.UNKNOWN else iter(())
    note = next(notes, None)
    note = unfolded(reply_text[:MAX_CHARS], note) if note else None
    return IntentResult(intent, spoken or _language(evidence, intent), tuple(reasons), note)


def subject_words_added(
    subject: str, request_subject: str | None = None, *, vocabulary: Vocabulary | None = None
) -> str:
    """The words the replier added to the subject, never the request's own words.

    Subject tags ("[R7K2-9QXM]") and reply prefixes ("Re:", "AW:", "RES:") are
    dropped. With ``request_subject`` the request's words are removed and the rest
    is returned; without it (or when it is not found) only text before the first
    reply prefix counts ("APPROVED: Re: ..."), and a subject with no prefix adds none.
    """
    prefix = (vocabulary or default_vocabulary()).compiled.subject_prefix
    text = _TAG.sub(" ", subject)
    original = " ".join(prefix.sub(" ", _TAG.sub(" ", request_subject or "")).split())
    added = ""
    words = r"\s+".join(map(re.escape, original.split()))
    # The last whole-word match: a request subject "A" or "Re" is not the "AW:" or
    # "Re:" the client wrote before it.
    pattern = rf"(?:(?<!\w)|(?=\W)){words}(?:(?!\w)|(?<=\W))"
    matches = list(re.finditer(pattern, text, re.IGNORECASE)) if original else []
    found = matches[-1] if matches else None
    if found:
        added = prefix.sub(" ", f"{text[: found.start()]} {text[found.end() :]}")
    elif first := prefix.search(text):
        added = text[: first.start()]
    return " ".join(added.split()).strip(_SUBJECT_SEPARATORS)


def _read_body(
    text: str, words: CompiledWords, short: ShortWords, reasons: list[str]
) -> tuple[list[Evidence], list[str]]:
    """The evidence of every meaningful line, and the lines (none for a long reply)."""
    if len(text) > MAX_CHARS or text.count("\n") > 4 * MAX_LINES:
        return _too_long(text, words, reasons), []
    lines = _logical_lines(text, words)
    if len(lines) > MAX_LINES:
        return _too_long(text, words, reasons), []
    evidence: list[Evidence] = []
    for number, line in enumerate(lines):
        evidence += _read_line(line, number, words, short, reasons)
    return evidence, lines


def _too_long(text: str, words: CompiledWords, reasons: list[str]) -> list[Evidence]:
    if words.keywords.search(fold(text)) is None:
        return []
    reason = f"reply longer than {MAX_LINES} lines or {MAX_CHARS} characters: not a decision"
    reasons.append(reason)
    return [Evidence(Intent.UNKNOWN, reason)]


def _logical_lines(text: str, words: CompiledWords) -> list[str]:
    """Meaningful lines, folded: quotes, blanks and bare greetings dropped, and a line
    joined to the next where the writer's sentence goes on ("I do not\\napprove this")."""
    lines: list[str] = []
    previous = ""  # the last raw line kept, "" after a blank, quoted or greeting line
    for raw in text.splitlines():
        line = raw.strip()
        folded = _LINKS.sub(" ", fold(line))
        if line.startswith(">") or not line or _is_bare_greeting(folded, words):
            previous = ""
            continue
        if previous and _continues(previous, line, words):
            lines[-1] = f"{lines[-1]} {folded}"
        else:
            lines.append(folded)
        previous = line
    return lines


def _is_bare_greeting(line: str, words: CompiledWords) -> bool:
    return words.greeting.fullmatch(line) is not None and not words.keywords.search(line)


def _continues(previous: str, line: str, words: CompiledWords) -> bool:
    """Whether ``line`` goes on with the sentence of ``previous`` (both raw, stripped)."""
    if previous.endswith(_ENDS_SENTENCE):
        return False
    dangling = words.ends_with_qualifier.search(fold(previous)) is not None
    return line[0].islower() or len(previous) >= WRAP_WIDTH or dangling


def _read_line(
    line: str, number: int, words: CompiledWords, short: ShortWords, reasons: list[str]
) -> list[Evidence]:
    found = list(words.keywords.finditer(line))
    if not found:
        return []
    where = "in the subject" if number < 0 else f"in line {number + 1}"
    where = "in first line" if number == 0 else where
    if len(found) > MAX_WORDS_PER_LINE:
        reasons.append(f"more than {MAX_WORDS_PER_LINE} decision words {where}: unknown")
        return [Evidence(Intent.UNKNOWN, reasons[-1], (), number)]
    spans = [Span(words.entries[" ".join(m.group(0).split())], m.start(), m.end()) for m in found]
    if _is_instruction(line, spans, words):
        reasons.append(f"line names several options {where}: an instruction, ignored")
        return []
    plain = "?" not in line and words.qualifiers.search(line) is None
    layout = None if plain else Layout.of(line)
    evidence = []
    for span in spans:
        if layout is None:  # nothing on the line can qualify a decision word
            intent, reason = span.entry.intent, f"keyword '{span.entry.word}' {where}"
        else:
            intent, reason = _judge(layout, span, words, short, where)
        reasons.append(reason)
        evidence.append(Evidence(intent, reason, span.entry.languages, number))
    return evidence


def _is_instruction(line: str, spans: list[Span], words: CompiledWords) -> bool:
    """Each of two or more intents named once, with "or" between: 'Reply APPROVE or REJECT'.
    A word named twice ("Reject or approve? Reject.") is read, not ignored."""
    if not len(spans) == len({span.entry.intent for span in spans}) >= 2:
        return False
    return words.alternatives.search(line, spans[0].end, spans[-1].start) is not None


def _judge(
    at: Layout, span: Span, words: CompiledWords, short: ShortWords, where: str
) -> tuple[Intent, str]:
    """Read one decision word in the context of its sentence and clause."""
    word, langs, line = f"'{span.entry.word}' {where}", span.entry.languages, at.line
    sentence = at.sentences.around(span.start, span.end)
    clause = at.clauses.around(span.start, span.end)
    if at.is_question(span):
        return Intent.UNKNOWN, f"question with {word}: not a decision"
    qualifier = words.search("not_yet", langs, line, *clause) or _condition(
        at, span, words, sentence, clause
    )
    if qualifier:
        return Intent.UNKNOWN, f"'{qualifier.group(0)}' with {word}: not a decision"
    restriction = (
        words.search("restrictions", langs, line, *sentence)
        if span.entry.intent is Intent.APPROVE
        else None
    )
    note = instruction_after(line, restriction, sentence[1], words, short) if restriction else None
    if restriction and not note:
        return Intent.UNKNOWN, f"'{restriction.group(0)}' restricts {word}: not a clear approval"
    negation = _negation(line, span, words, clause)
    if negation is not None:
        side = "before" if negation.end() <= span.start else "after"
        said = f"negation '{negation.group(0)}' {side} {word}"
        if span.entry.intent is Intent.APPROVE and _is_refusal(line, span, negation, words):
            return Intent.REJECT, f"{said}: a refusal"
        return Intent.UNKNOWN, f"{said}: unknown"
    hedge = words.search("hedges", langs, line, clause[0], span.start)
    if hedge:
        return Intent.UNKNOWN, f"'{hedge.group(0)}' before {word}: not a decision"
    return span.entry.intent, f"keyword {word}; {NOTE_MARK}'{note}'" if note else f"keyword {word}"


def _note(reason: str) -> str | None:
    return reason.partition(NOTE_MARK)[2][1:-1] or None


def _condition(
    at: Layout,
    span: Span,
    words: CompiledWords,
    sentence: tuple[int, int],
    clause: tuple[int, int],
) -> re.Match[str] | None:
    """'if', 'once', 'si'... in the word's clause or opening another clause of its
    sentence, and followed by more words (so "Si, aprobado" is no condition)."""
    position, end = sentence
    while found := words.search("conditions", span.entry.languages, at.line, position, end):
        position = found.end()
        own_start, own_end = at.clauses.around(found.start(), found.end())
        in_reach = own_start == clause[0] or not at.line[own_start : found.start()].strip()
        if in_reach and _WORD.search(at.line, position, own_end):
            return found
    return None


def _negation(
    line: str, span: Span, words: CompiledWords, clause: tuple[int, int]
) -> re.Match[str] | None:
    """The negator in the word's clause nearest before it, else the first after it."""
    before = list(words.negators.finditer(line, clause[0], span.start))
    return before[-1] if before else words.negators.search(line, span.end, clause[1])


def _is_refusal(line: str, span: Span, negation: re.Match[str], words: CompiledWords) -> bool:
    """A strong negator of the word's language just before it: 'not approved'."""
    said = " ".join(negation.group(0).split())
    strong = any(said in words.strong_negators[code] for code in span.entry.languages)
    between = _WORD.findall(line, negation.end(), span.start)
    return strong and negation.end() <= span.start and len(between) <= NEGATION_REACH


def _decide(
    evidence: list[Evidence], doubt: str | None, take_back: str | None = None
) -> tuple[Intent, str | None]:
    """The reply's intent from all its evidence (and a doubt word, or a bare "no" that
    takes a word back, anywhere in it), and a closing reason when it is not plain."""
    if not evidence:
        return Intent.UNKNOWN, "no approve, reject or acknowledge word found"
    if any(item.intent is Intent.UNKNOWN for item in evidence):
        return Intent.UNKNOWN, "an unsure word makes the reply unknown"
    intents = {item.intent for item in evidence}
    if {Intent.APPROVE, Intent.REJECT} <= intents:
        return Intent.UNKNOWN, "both approve and reject words: unknown"
    if all(item.line >= DECISIVE_LINES for item in evidence):
        return Intent.UNKNOWN, f"decision words only after line {DECISIVE_LINES}: unknown"
    decided = next(i for i in (Intent.APPROVE, Intent.REJECT, Intent.ACKNOWLEDGE) if i in intents)
    if doubt and decided is not Intent.ACKNOWLEDGE:
        return Intent.UNKNOWN, f"doubt '{doubt}' in the reply: no {decided.value} read, unknown"
    if take_back and decided is Intent.APPROVE:
        return Intent.UNKNOWN, f"a bare '{take_back}' takes the approval back: unknown"
    return decided, None


def _language(evidence: list[Evidence], intent: Intent) -> str | None:
    """The language whose words carried the result (most hits; first seen on a tie)."""
    if intent is Intent.UNKNOWN:
        return None
    languages = [lang for item in evidence if item.intent is intent for lang in item.languages]
    if len(set(languages)) <= 1:
        return languages[0] if languages else None
    return Counter(languages).most_common(1)[0][0]
