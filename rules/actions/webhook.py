"""``webhook``: POST the event JSON, signed, with the outcome id as the idempotency key.

Headers: ``X-Ackmail-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` (with
the ``secret``), ``Idempotency-Key: <outcome id>`` (the same on every retry and
after a crash, so the receiver can drop repeats), ``X-Ackmail-Event``. A 2xx
answer ends it; anything else, a timeout or a dropped connection is retried.
Redirects are not followed: a POST must not silently turn into a GET elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from ingest import __version__
from ingest.errors import ConfigError, PermanentError, TransientError
from rules.base import ActionEnvironment, Delivery
from rules.params import Params, resolve_secret

SIGNATURE_HEADER = "X-Ackmail-Signature"
DEFAULT_TIMEOUT = 10.0


class WebhookAction:
    """POST the stored event payload to ``url``."""

    name = "webhook"

    def __init__(self, env: ActionEnvironment) -> None:
        self.env = env

    def prepare(self, params: Params) -> dict[str, Any]:
        """Keys: url (http or https), secret ({ env } or { file }), timeout (seconds)."""
        url = params.text("url")
        if isinstance(url, str):
            problem = url_problem(url)
            if problem:
                params.problem("url", f"url {problem}")
        return {
            "url": url,
            "secret": params.secret_ref("secret"),
            "timeout": params.number("timeout", DEFAULT_TIMEOUT, low=0.1, high=300),
        }

    def deliver(self, delivery: Delivery) -> dict[str, Any]:
        """One POST; the receiver's status code is kept in the outcome."""
        url = str(delivery.params["url"])
        body = event_body(delivery.payload)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"ackmail/{__version__}",
            "Idempotency-Key": delivery.idempotency_key,
            "X-Ackmail-Event": delivery.event_type,
        }
        secret_ref = delivery.params.get("secret")
        if secret_ref:
            headers[SIGNATURE_HEADER] = sign(body, _secret(secret_ref))
        timeout = float(delivery.params.get("timeout", DEFAULT_TIMEOUT))
        try:
            answer = requests.post(url, data=body, headers=headers, timeout=timeout,
                                   allow_redirects=False)
        except requests.Timeout:
            raise TransientError(f"webhook {safe_url(url)} did not answer within "
                                 f"{timeout:g} s; it will be retried") from None
        except requests.RequestException as exc:
            raise TransientError(f"webhook {safe_url(url)} could not be reached "
                                 f"({type(exc).__name__}); it will be retried") from None
        if not 200 <= answer.status_code < 300:
            raise TransientError(f"webhook {safe_url(url)} answered HTTP {answer.status_code} "
                                 f"{answer.reason}; it will be retried")
        return {"status": answer.status_code}


def event_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes that are sent and signed: the stored payload as compact JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(body: bytes, secret: str) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of the raw body under ``secret``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def url_problem(url: str) -> str:
    """Why ``url`` cannot be a webhook target, or ''."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL with a host, not {url!r}"
    if parts.username or parts.password:
        return ("must not carry a user name or password; the rules file is not a place for "
                "secrets (use secret = { env = \"NAME\" } to sign the requests)")
    return ""


def safe_url(url: str) -> str:
    """The URL without credentials, query or fragment, for messages (they may carry a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _secret(ref: Mapping[str, str]) -> str:
    try:
        return resolve_secret(ref).reveal()
    except ConfigError as exc:
        raise PermanentError(f"webhook secret {exc}") from None
