"""The webhook action against the real receiver: signature, headers, failures as transient."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import PermanentError, TransientError
from rules.actions.webhook import WebhookAction, event_body, safe_url, sign, url_problem
from rules.base import ActionEnvironment, Delivery
from rules.params import Params
from tests.servers.http_receiver import HttpReceiver
from tests.servers.rules_fixtures import WEBHOOK_SECRET

PAYLOAD: dict[str, Any] = {"event": "request.approved", "request": {"id": 3, "ref": "CR-é"}}


def _delivery(url: str, **params: Any) -> Delivery:
    return Delivery(outcome_id=41, event_id=9, event_type="request.approved", rule="hook",
                    payload=PAYLOAD, params={"url": url, "timeout": 2.0, **params})


@pytest.fixture
def action() -> WebhookAction:
    return WebhookAction(ActionEnvironment())


def test_the_body_is_the_payload_and_the_signature_its_hmac(
    action: WebhookAction, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", WEBHOOK_SECRET)

    result = action.deliver(_delivery(http_receiver.url, secret={"env": "HOOK_SECRET"}))

    [request] = http_receiver.received
    assert result == {"status": 200}
    assert request.signature_ok is True
    assert request.headers["x-ackmail-signature"] == sign(request.body, WEBHOOK_SECRET)
    assert request.body == event_body(PAYLOAD) and request.json() == PAYLOAD
    assert request.headers["idempotency-key"] == "41"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.headers["user-agent"].startswith("ackmail/")


def test_a_wrong_secret_is_refused_by_the_receiver_and_retried(
    action: WebhookAction, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    key = tmp_path / "hook.key"
    key.write_text("not-the-shared-secret\n")
    with pytest.raises(TransientError, match="answered HTTP 401"):
        action.deliver(_delivery(http_receiver.url, secret={"file": str(key)}))
    assert http_receiver.received[0].signature_ok is False


def test_without_a_secret_there_is_no_signature(
    action: WebhookAction, http_receiver: HttpReceiver
) -> None:
    http_receiver.secret = None
    action.deliver(_delivery(http_receiver.url))
    assert "x-ackmail-signature" not in http_receiver.received[0].headers


def test_a_secret_gone_at_delivery_is_permanent(
    action: WebhookAction, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GONE_SECRET", raising=False)
    with pytest.raises(PermanentError, match="GONE_SECRET, which is not set"):
        action.deliver(_delivery(http_receiver.url, secret={"env": "GONE_SECRET"}))
    assert http_receiver.received == []


@pytest.mark.parametrize(("answer", "says"), [
    (500, "answered HTTP 500"),
    (302, "answered HTTP 302"),  # redirects are not followed
    ("hang", "did not answer within 0.3 s"),
    ("close", "could not be reached"),
])
def test_anything_but_2xx_is_transient(
    action: WebhookAction, http_receiver: HttpReceiver, answer: int | str, says: str
) -> None:
    http_receiver.secret = None
    http_receiver.answer_next(answer)
    with pytest.raises(TransientError, match=says):
        action.deliver(_delivery(f"{http_receiver.url}/x?key=abc", timeout=0.3))
    assert len(http_receiver.received) == 1


def test_an_unreachable_receiver_is_transient_and_the_url_is_masked(
    action: WebhookAction, http_receiver: HttpReceiver
) -> None:
    url = f"{http_receiver.url}/hook?token=s3cret"
    http_receiver.stop()
    with pytest.raises(TransientError) as failure:
        action.deliver(_delivery(url))
    assert "could not be reached" in str(failure.value) and "s3cret" not in str(failure.value)


@pytest.mark.parametrize(("url", "problem"), [
    ("https://hooks.example.com/x", ""),
    ("http://127.0.0.1:8080/x", ""),
    ("ftp://hooks.example.com/x", "http:// or https://"),
    ("hooks.example.com/x", "http:// or https://"),
    ("https:///x", "with a host"),
    ("https://user:pw@hooks.example.com/x", "must not carry a user name or password"),
])
def test_url_validation(url: str, problem: str) -> None:
    found = url_problem(url)
    assert (problem in found) if problem else found == ""


def test_prepare_reports_every_bad_key(action: WebhookAction) -> None:
    params = Params({"url": "ftp://x", "timeout": 0, "secret": "inline"}, fields=frozenset(),
                    base_dir=Path("."))
    action.prepare(params)
    params.finish()
    assert [key for key, _ in params.problems] == ["url", "secret", "timeout"]


def test_safe_url_drops_query_and_credentials() -> None:
    assert safe_url("https://h.example/p?token=x#f") == "https://h.example/p"
    assert safe_url("https://u:pw@h.example:8443/p") == "https://h.example:8443/p"
    assert json.loads(event_body({"a": "é"})) == {"a": "é"}
