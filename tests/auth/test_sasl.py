"""SASL initial responses for XOAUTH2 and OAUTHBEARER, raw and base64."""

from __future__ import annotations

import base64

import pytest

from ingest.auth.sasl import (
    Mechanism,
    initial_response,
    initial_response_b64,
    oauthbearer,
    xoauth2,
)
from ingest.config.reader import Secret

TOKEN = Secret("eyJ0.eyJ1.sig", "test")


def test_xoauth2_bytes() -> None:
    assert xoauth2("alice@example.test", TOKEN) == \
        b"user=alice@example.test\x01auth=Bearer eyJ0.eyJ1.sig\x01\x01"


def test_oauthbearer_bytes_carry_the_authzid() -> None:
    assert oauthbearer("alice@example.test", TOKEN) == \
        b"n,a=alice@example.test,\x01auth=Bearer eyJ0.eyJ1.sig\x01\x01"


def test_oauthbearer_escapes_comma_and_equals() -> None:
    assert oauthbearer("a,b=c@x.test", TOKEN).startswith(b"n,a=a=2Cb=3Dc@x.test,\x01")


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "xoauth2", Mechanism.OAUTHBEARER])
def test_base64_form_decodes_to_the_raw_form(mechanism: str) -> None:
    encoded = initial_response_b64(mechanism, "bob@x.test", TOKEN)

    assert base64.b64decode(encoded, validate=True) == \
        initial_response(mechanism, "bob@x.test", TOKEN)


def test_unknown_mechanism_is_refused() -> None:
    with pytest.raises(ValueError, match="PLAIN"):
        initial_response("PLAIN", "bob@x.test", TOKEN)
