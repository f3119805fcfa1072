"""Property tests: the parse hop on generated input, and MIME trees against an oracle.

Three generators: arbitrary bytes; arbitrary bytes behind a valid header; and MIME
trees (nested multiparts, charsets real and bogus, transfer encodings, tricky From
values; built in fuzz_compose.py). Every example must satisfy every invariant of the
fuzz targets (fuzz_targets.py): no crash, a one-line problem or a parsed message
within the limits, the same structure as a plain parse. Well-formed trees are also
checked against an oracle: the part count and depth we report, and the body part
that ``EmailMessage.get_body(("plain", "html"))`` picks.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.parse.base import ParseLimits
from tests.parse.fuzz_compose import (
    AUTH_VALUES,
    FROM_VALUES,
    SAFE_TEXT,
    SUBJECTS,
    Leaf,
    Multi,
    Tree,
    message_bytes,
    shape,
    trees,
)
from tests.parse.fuzz_targets import LIMITS, check_message

SETTINGS = settings(max_examples=200, deadline=None)


@SETTINGS
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    check_message(raw)


@SETTINGS
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_behind_a_header(raw: bytes) -> None:
    message = check_message(b"Subject: fuzz\r\n" + raw)
    assert message.problem is None or "limit" in message.problem or "deep" in message.problem


@SETTINGS
@given(trees(st.text(max_size=200)), st.sampled_from(FROM_VALUES), st.sampled_from(AUTH_VALUES),
       SUBJECTS, st.integers(min_value=0, max_value=4000))
def test_generated_mime_trees_even_truncated(tree: Tree, sender: str, auth: str, subject: str,
                                             cut: int) -> None:
    raw = message_bytes(tree, sender, auth, subject)
    check_message(raw)
    check_message(raw[:cut])


@SETTINGS
@given(trees(SAFE_TEXT), st.sampled_from(FROM_VALUES), st.sampled_from(AUTH_VALUES))
def test_well_formed_trees_match_the_oracle(tree: Tree, sender: str, auth: str) -> None:
    raw = message_bytes(tree, sender, auth, "Re: generated")
    message = check_message(raw, ParseLimits())
    parts, depth = shape(tree)
    assert message.problem is None
    assert (message.structure.part_count, message.structure.depth) == (parts, depth)
    oracle = message_from_bytes(raw, policy=policy.default)
    assert isinstance(oracle, EmailMessage)
    chosen = oracle.get_body(preferencelist=("plain", "html"))
    if chosen is None:
        assert message.body_text == ""
    else:
        assert message.body_is_html == (chosen.get_content_type() == "text/html")


@SETTINGS
@given(st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=300))
def test_limits_hold_for_generated_floods(depth: int, width: int) -> None:
    tree: Tree = Multi("mixed", tuple(Leaf("text/plain", "utf-8", "7bit", "x", "")
                                      for _ in range(width)))
    for _ in range(depth - 1):
        tree = Multi("mixed", (tree,))
    message = check_message(message_bytes(tree, "a@x.test", "mx.test; none", "flood"))
    parts, deepest = shape(tree)
    within = parts <= LIMITS.max_parts and deepest <= LIMITS.max_depth
    assert (message.problem is None) == within, message.problem
