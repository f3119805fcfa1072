"""SASL for bearer tokens: XOAUTH2 and OAUTHBEARER initial responses, and the responder."""

from __future__ import annotations

import base64

import pytest

from ingest.auth.sasl import Mechanism, SaslResponder, initial_response
from ingest.config.reader import Secret

TOKEN = Secret("eyJ0.eyJ1.sig", "test")


def test_xoauth2_bytes() -> None:
    assert initial_response(Mechanism.XOAUTH2, "alice@example.test", TOKEN) == \
        b"user=alice@example.test\x01auth=Bearer eyJ0.eyJ1.sig\x01\x01"


def test_oauthbearer_bytes_carry_the_authzid() -> None:
    assert initial_response(Mechanism.OAUTHBEARER, "alice@example.test", TOKEN) == \
        b"n,a=alice@example.test,\x01auth=Bearer eyJ0.eyJ1.sig\x01\x01"


def test_oauthbearer_escapes_comma_and_equals() -> None:
    assert initial_response(Mechanism.OAUTHBEARER, "a,b=c@x.test", TOKEN).startswith(
        b"n,a=a=2Cb=3Dc@x.test,\x01")


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "xoauth2", Mechanism.OAUTHBEARER])
def test_the_responder_answers_first_with_the_initial_response_then_empty(
    mechanism: str,
) -> None:
    respond = SaslResponder(Mechanism(mechanism.upper()), "bob@x.test", TOKEN)
    assert respond().encode() == initial_response(mechanism, "bob@x.test", TOKEN)
    assert respond(b'{"status":"401"}') == ""  # RFC 7628: acknowledge the error challenge


def test_the_responder_base64_form_decodes_to_the_raw_form() -> None:
    respond = SaslResponder(Mechanism.XOAUTH2, "bob@x.test", TOKEN)
    encoded = respond.encoded()

    assert base64.b64decode(encoded, validate=True) == \
        initial_response(Mechanism.XOAUTH2, "bob@x.test", TOKEN)
    assert respond.encoded(b"+ challenge") == ""


def test_unknown_mechanism_is_refused() -> None:
    with pytest.raises(ValueError, match="PLAIN"):
        initial_response("PLAIN", "bob@x.test", TOKEN)
