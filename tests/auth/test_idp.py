"""The test identity provider itself: Entra-shaped answers over real HTTPS."""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

import jwt
import pytest
import requests

from tests.auth.conftest import ALICE, APP_ID, APP_SECRET, PUBLIC_ID
from tests.servers.idp import KID, IdentityProvider
from tests.servers.tls import TestPki


@pytest.fixture
def http(idp: IdentityProvider) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify otherwise
    session.verify = idp.ca_pem
    return session


def _token(idp: IdentityProvider, http: requests.Session, **form: str) -> requests.Response:
    return http.post(f"{idp.authority}/oauth2/v2.0/token", data=form, timeout=10)


def test_discovery_document(idp: IdentityProvider, http: requests.Session) -> None:
    doc = http.get(f"{idp.issuer}/.well-known/openid-configuration", timeout=10).json()

    assert doc["issuer"] == idp.issuer
    assert doc["token_endpoint"] == f"{idp.authority}/oauth2/v2.0/token"
    assert doc["device_authorization_endpoint"].startswith("https://127.0.0.1:")


def test_app_token_validates_like_dovecot_does(idp: IdentityProvider,
                                               http: requests.Session) -> None:
    idp.register_client(APP_ID, secret=APP_SECRET)
    answer = _token(idp, http, grant_type="client_credentials", client_id=APP_ID,
                    client_secret=APP_SECRET, scope="https://outlook.office365.com/.default")

    token = answer.json()["access_token"]
    claims = jwt.decode(token, idp.public_key_pem, algorithms=["RS256"],
                        audience="https://outlook.office365.com", issuer=idp.issuer)

    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": KID, "typ": "JWT"}
    assert (claims["idtyp"], claims["appid"], claims["tid"]) == ("app", APP_ID, idp.tenant)
    assert claims["roles"] == ["IMAP.AccessAsApp", "POP.AccessAsApp"] and "upn" not in claims
    assert claims["nbf"] <= claims["iat"] < claims["exp"]


def _device_tokens(idp: IdentityProvider, http: requests.Session) -> dict[str, Any]:
    idp.register_client(PUBLIC_ID)
    scope = "https://outlook.office.com/IMAP.AccessAsUser.All offline_access openid"
    flow = http.post(f"{idp.authority}/oauth2/v2.0/devicecode", timeout=10,
                     data={"client_id": PUBLIC_ID, "scope": scope}).json()
    pending = _token(idp, http, grant_type="urn:ietf:params:oauth:grant-type:device_code",
                     client_id=PUBLIC_ID, device_code=flow["device_code"])
    assert pending.json()["error"] == "authorization_pending"
    idp.approve_device_code(flow["user_code"], ALICE)
    answer = _token(idp, http, grant_type="urn:ietf:params:oauth:grant-type:device_code",
                    client_id=PUBLIC_ID, device_code=flow["device_code"])
    result: dict[str, Any] = answer.json()
    return result


def test_refresh_tokens_rotate(idp: IdentityProvider, http: requests.Session) -> None:
    first = _device_tokens(idp, http)["refresh_token"]

    renewed = _token(idp, http, grant_type="refresh_token", client_id=PUBLIC_ID,
                     refresh_token=first)
    reused = _token(idp, http, grant_type="refresh_token", client_id=PUBLIC_ID,
                    refresh_token=first)

    assert renewed.status_code == 200 and renewed.json()["refresh_token"] != first
    assert reused.status_code == 400 and reused.json()["error_codes"] == [70000]
    assert idp.live_refresh_tokens(ALICE) == [renewed.json()["refresh_token"]]


def test_user_token_shape(idp: IdentityProvider, http: requests.Session) -> None:
    tokens = _device_tokens(idp, http)

    claims = jwt.decode(tokens["access_token"], idp.public_key_pem, algorithms=["RS256"],
                        audience="https://outlook.office365.com", issuer=idp.issuer)

    assert (claims["idtyp"], claims["upn"]) == ("user", ALICE)
    assert claims["scp"] == "IMAP.AccessAsUser.All POP.AccessAsUser.All SMTP.Send"
    assert tokens["scope"] == "https://outlook.office.com/IMAP.AccessAsUser.All"
    assert {"id_token", "client_info"} <= tokens.keys()


def test_pkce_verifier_must_match(idp: IdentityProvider, http: requests.Session) -> None:
    idp.register_client(PUBLIC_ID)
    authorize = http.get(f"{idp.authority}/oauth2/v2.0/authorize", allow_redirects=False,
                         timeout=10, params={
                             "client_id": PUBLIC_ID, "redirect_uri": "http://127.0.0.1:9/",
                             "login_hint": ALICE, "scope": "openid", "state": "s1",
                             "code_challenge": "x" * 43, "code_challenge_method": "S256"})
    code = authorize.headers["Location"].split("code=")[1].split("&")[0]

    answer = _token(idp, http, grant_type="authorization_code", client_id=PUBLIC_ID, code=code,
                    redirect_uri="http://127.0.0.1:9/", code_verifier="not-the-verifier")

    assert answer.status_code == 400 and answer.json()["error_codes"] == [501481]


def test_injected_failure_looks_like_entra(idp: IdentityProvider,
                                           http: requests.Session) -> None:
    idp.register_client(APP_ID, secret=APP_SECRET)
    idp.fail_next(1, 7000222)
    form = {"grant_type": "client_credentials", "client_id": APP_ID,
            "client_secret": APP_SECRET, "scope": "https://outlook.office365.com/.default"}

    failed, healed = _token(idp, http, **form), _token(idp, http, **form)

    body = failed.json()
    assert failed.status_code == 400 and body["error"] == "invalid_client"
    assert body["error_description"].startswith("AADSTS7000222: ")
    assert body["error_codes"] == [7000222] and body["correlation_id"] and body["trace_id"]
    assert healed.status_code == 200
    assert [(r.method, r.grant_type) for r in idp.requests()] == \
        [("POST", "client_credentials")] * 2


def test_stop_leaves_nothing_running(idp_pki: TestPki) -> None:
    provider = IdentityProvider(idp_pki).start()
    port = int(provider.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            pytest.raises(ssl.SSLError):  # an untrusting client fails; the server goes on
        ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")

    provider.stop()

    assert not any(t.name == "test-idp" for t in threading.enumerate())
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
