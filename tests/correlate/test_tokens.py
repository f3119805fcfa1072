"""Tokens: typeable, case-insensitive, bound to request and address, unforgeable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ingest.correlate import tokens
from ingest.parse.tokens import looks_like_token, normalise

SECRET = "correct horse battery staple"


def test_token_shape_is_typeable() -> None:
    token = tokens.compute(SECRET, 17, "alice@example.test", "00ff")
    assert looks_like_token(token)
    assert len(token) == 9 and token[4] == "-"
    assert not set(token) & set("ILOU")


def test_token_depends_on_secret_request_address_and_nonce() -> None:
    base = tokens.compute(SECRET, 17, "alice@example.test", "00ff")
    assert tokens.compute(SECRET, 17, "ALICE@example.test", "00ff") == base
    others = {
        tokens.compute("another secret", 17, "alice@example.test", "00ff"),
        tokens.compute(SECRET, 18, "alice@example.test", "00ff"),
        tokens.compute(SECRET, 17, "mallory@example.test", "00ff"),
        tokens.compute(SECRET, 17, "alice@example.test", "00fe"),
    }
    assert base not in others and len(others) == 4


def test_verify_accepts_only_the_exact_token() -> None:
    token = tokens.compute(SECRET, 17, "alice@example.test", "00ff")
    assert tokens.verify(SECRET, token, 17, "alice@example.test", "00ff")
    assert not tokens.verify(SECRET, token, 17, "bob@example.test", "00ff")
    altered = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert not tokens.verify(SECRET, altered, 17, "alice@example.test", "00ff")


def test_normalise_reads_what_people_type() -> None:
    assert normalise("r7k2-9qxm") == "R7K2-9QXM"
    assert normalise(" R7K29QXM ") == "R7K2-9QXM"
    assert normalise("R7K2-9QXO") == "R7K2-9QX0"
    assert normalise("R7KL-9QXI") == "R7K1-9QX1"
    assert normalise("R7K2-9QX") is None
    assert normalise("R7K2-9QXU") is None


@given(st.integers(min_value=1, max_value=2**40), st.emails(), st.text(min_size=1, max_size=20))
def test_every_computed_token_normalises_to_itself(
    request_id: int, address: str, nonce: str
) -> None:
    token = tokens.compute(SECRET, request_id, address, nonce)
    assert normalise(token) == token
    assert normalise(token.lower()) == token
