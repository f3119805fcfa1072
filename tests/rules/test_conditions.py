"""``when`` conditions: every operator, the combinators, TOML shapes, and what they say."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from rules.conditions import ConditionReader
from rules.fields import fields_of

FIELDS = fields_of(["request.approved", "auth.failed"])
PAYLOAD: dict[str, Any] = {
    "event": "request.approved",
    "request": {"id": 17, "ref": "CR-20631", "kind": "approval", "subject": None},
    "response": {"intent": "approve", "address": "alice@example.test", "counted": True},
}


def _when(text: str) -> Any:
    reader = ConditionReader(FIELDS)
    condition = reader.read(tomllib.loads(f"when = {text}")["when"])
    assert reader.problems == []
    return condition


@pytest.mark.parametrize(
    ("when", "holds"),
    [
        ('{ ref = "CR-*" }', True),
        ('{ ref = "INC-*" }', False),
        ('{ ref = "CR-20631" }', True),
        ('{ ref = "CR-2063" }', False),
        ('{ "request.id" = 17 }', True),
        ('{ request.id = 18 }', False),  # a TOML dotted key nests tables; read as a path
        ('{ "response.counted" = true }', True),
        ('{ ref = { regex = "^CR-[0-9]{5}$" } }', True),
        ('{ ref = { regex = "^INC" } }', False),
        ('{ intent = { in = ["approve", "reject"] } }', True),
        ('{ intent = { in = ["acknowledge"] } }', False),
        ('{ "request.id" = { gt = 16 } }', True),
        ('{ "request.id" = { gt = 17 } }', False),
        ('{ "request.id" = { ge = 17, le = 17 } }', True),
        ('{ "request.id" = { lt = 17 } }', False),
        ('{ ref = { gt = 1 } }', False),  # a string is never greater than a number
        ('{ "request.subject" = { exists = false } }', True),
        ('{ cause = { exists = true } }', False),  # not in this event at all
        ('{ ref = { eq = "CR-*" } }', False),  # eq is literal: no glob
        ('{ any = [ { ref = "INC-*" }, { ref = "CR-*" } ] }', True),
        ('{ all = [ { ref = "CR-*" }, { intent = "reject" } ] }', False),
        ('{ not = { intent = "reject" } }', True),
        ('{ ref = "CR-*", not = { intent = "approve" } }', False),
        ("{}", True),
    ],
)
def test_condition_holds_or_not(when: str, holds: bool) -> None:
    assert _when(when).check(PAYLOAD).ok is holds


def test_a_missing_field_never_matches_and_says_so() -> None:
    verdict = _when('{ cause = "x*" }').check(PAYLOAD)
    assert not verdict.ok and verdict.reason == "cause is not in this event"


def test_verdicts_explain_the_values() -> None:
    miss = _when('{ ref = "INC-*" }').check(PAYLOAD)
    assert miss.reason == "request.ref 'CR-20631' NOT matches 'INC-*'"
    hit = _when('{ intent = { in = ["approve"] } }').check(PAYLOAD)
    assert hit.ok and hit.reason == "response.intent 'approve' is one of ['approve']"
    none = _when('{ any = [ { ref = "A*" }, { ref = "B*" } ] }').check(PAYLOAD)
    assert none.reason.startswith("none of: ") and "'A*'" in none.reason and "'B*'" in none.reason


@pytest.mark.parametrize(
    ("when", "key", "says"),
    [
        ('{ "response.intnt" = "x" }', "response.intnt", "did you mean 'response.intent'"),
        ('{ ref = { regex = "(" } }', "ref", "not a valid regular expression"),
        ('{ ref = { like = "x" } }', "like", "which this rule's events do not carry"),
        ('{ ref = { glob = "x", like = "y" } }', "ref", "mixes operators with like"),
        ('{ ref = ["a", "b"] }', "ref", "write { in = [...] }"),
        ('{ ref = { in = [] } }', "ref", "non-empty list"),
        ('{ "request.id" = { gt = "5" } }', "request.id", "needs a number"),
        ('{ any = { ref = "x" } }', "any", "non-empty list of tables"),
        ('{ not = ["x"] }', "not", "must be a table"),
    ],
)
def test_bad_conditions_are_reported_with_their_key(when: str, key: str, says: str) -> None:
    reader = ConditionReader(FIELDS)
    reader.read(tomllib.loads(f"when = {when}")["when"])
    assert [k for k, _ in reader.problems] == [key]
    assert says in reader.problems[0][1]


def test_when_must_be_a_table() -> None:
    reader = ConditionReader(FIELDS)
    reader.read("CR-*")
    assert reader.problems == [("when", 'condition \'when\' must be a table such as '
                                        '{ ref = "CR-*" }')]
