"""decode_claims and explain_token, on tokens from the test provider and on hand-made claims."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from ingest.auth import TokenProvider, decode_claims, explain_token
from ingest.auth.claims import MalformedToken
from ingest.config import MailboxConfig
from ingest.config.reader import Secret
from ingest.timeutil import utcnow
from tests.auth.conftest import ALICE, MailboxFactory
from tests.servers.idp import IdentityProvider


def test_claims_of_a_real_token_without_the_signature(idp: IdentityProvider,
                                                      signed_in: TokenProvider) -> None:
    token = signed_in.token().secret
    signature = token.reveal().rsplit(".", 1)[1]

    claims = decode_claims(token)

    assert claims["upn"] == ALICE and claims["iss"] == idp.issuer and claims["tid"] == idp.tenant
    assert signature not in json.dumps(claims)
    assert decode_claims(token.reveal()) == claims  # a plain string works too


@pytest.mark.parametrize("bad", ["opaque-token", "a.b", "x.!!!.y", "x.WzFd.y"])
def test_malformed_tokens_are_refused(bad: str) -> None:
    with pytest.raises(MalformedToken):
        decode_claims(Secret(bad, "test"))


def _user_claims(**changes: Any) -> dict[str, Any]:
    now = int(utcnow().timestamp())
    claims = {"aud": "https://outlook.office365.com", "idtyp": "user", "upn": ALICE,
              "scp": "IMAP.AccessAsUser.All SMTP.Send", "tid": "t-1", "exp": now + 3600,
              "nbf": now - 60}
    return {key: value for key, value in (claims | changes).items() if value is not None}


@pytest.fixture
def alice(idp: IdentityProvider, make_mailbox: MailboxFactory) -> MailboxConfig:
    return make_mailbox("oauth2-delegated", tenant_id="t-1")


def test_good_token_has_no_findings(alice: MailboxConfig) -> None:
    assert explain_token(_user_claims(), alice) == []


@pytest.mark.parametrize(("changes", "expected"), [
    ({"upn": "bob@example.test"}, "upn bob@example.test differs from mailbox " + ALICE),
    ({"aud": "https://graph.microsoft.com"},
     "aud is https://graph.microsoft.com, not https://outlook.office365.com"),
    ({"scp": "SMTP.Send"}, "the token lacks IMAP.AccessAsUser.All in scp"),
    ({"tid": "t-2"}, "tid t-2 is not the configured tenant t-1"),
    ({"idtyp": "app", "scp": None, "roles": ["IMAP.AccessAsApp"]},
     "the token is oauth2-app but the mailbox uses auth = 'oauth2-delegated'"),
])
def test_each_problem_is_named(alice: MailboxConfig, changes: dict[str, Any],
                               expected: str) -> None:
    findings = explain_token(_user_claims(**changes), alice)

    assert any(text.startswith(expected) for text in findings), findings


def test_expiry_is_told_in_minutes(alice: MailboxConfig) -> None:
    expired = int((utcnow() - timedelta(minutes=5, seconds=10)).timestamp())

    assert explain_token(_user_claims(exp=expired), alice) == ["expired 5 min ago"]


def test_app_token_without_the_imap_role(idp: IdentityProvider,
                                         make_mailbox: MailboxFactory) -> None:
    mailbox = make_mailbox("oauth2-app", tenant_id="t-1")
    claims = _user_claims(idtyp="app", upn=None, scp=None, roles=["POP.AccessAsApp"])

    assert explain_token(claims, mailbox) == ["the token lacks IMAP.AccessAsApp in roles"]
