"""Interactive delegated sign-in: device code, or a browser with a loopback redirect + PKCE.

Either way the new grant replaces the stored one only after it proved to be for
the mailbox's own account: a browser still signed in to someone else would
otherwise hand ackmail the wrong mailbox's grant without a word.
"""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qsl

import msal

from ingest.auth.base import TokenProvider
from ingest.auth.claims import token_account
from ingest.auth.diagnose import error_for
from ingest.auth.errors import AuthError
from ingest.auth.tokens import DelegatedTokenProvider
from ingest.errors import ConfigError
from ingest.timeutil import utcnow

Interaction = Callable[[msal.ClientApplication], dict[str, Any]]
_DONE_PAGE = (b"<!doctype html><title>ackmail</title><p>Sign-in finished. "
              b"You can close this window and return to the terminal.</p>")


@dataclass(frozen=True)
class SignInResult:
    """The account now stored for the subject, and its first access token's expiry."""

    subject: str
    account: str
    access_token_expires: datetime


@dataclass(frozen=True)
class DeviceCodePrompt:
    """What to show the user; ``flow`` (with the device code) stays out of repr."""

    message: str
    user_code: str
    verification_uri: str
    expires_at: datetime
    flow: dict[str, Any] = field(repr=False, compare=False)


def delegated(provider: TokenProvider) -> DelegatedTokenProvider:
    """The provider as a delegated one, or a ConfigError for other auth kinds."""
    if not isinstance(provider, DelegatedTokenProvider):
        raise ConfigError(f"{provider.subject.name} uses auth = '{provider.subject.kind}'; only "
                          "auth = 'oauth2-delegated' signs in interactively")
    return provider


def start_device_sign_in(provider: TokenProvider) -> DeviceCodePrompt:
    """Ask the identity provider for a device code; show ``message`` to the user."""
    target = delegated(provider)
    app = target.session.application()
    flow = target.session.guard(lambda: app.initiate_device_flow(scopes=target.scopes))
    if "user_code" not in flow:
        raise error_for(flow, target.subject)
    return DeviceCodePrompt(message=str(flow.get("message", "")), user_code=flow["user_code"],
                            verification_uri=str(flow.get("verification_uri", "")),
                            expires_at=utcnow() + timedelta(seconds=int(flow["expires_in"])),
                            flow=flow)


def finish_device_sign_in(provider: TokenProvider, prompt: DeviceCodePrompt) -> SignInResult:
    """Poll until the user has entered the code, then store the new grant."""
    return sign_in(delegated(provider), lambda app: app.acquire_token_by_device_flow(prompt.flow))


def sign_in_with_browser(provider: TokenProvider,
                         open_url: Callable[[str], object] = webbrowser.open, *,
                         timeout: float = 300.0, port: int = 0) -> SignInResult:
    """Auth code + PKCE: open the sign-in page, catch the answer on http://127.0.0.1:<port>.

    The answer comes as a form POST (``response_mode=form_post``), so the code never
    shows in a URL or the browser's history; MSAL's own loopback receiver insists on it.
    """
    target = delegated(provider)
    with _redirect_catcher(port) as catcher:
        def interaction(app: msal.ClientApplication) -> dict[str, Any]:
            flow = app.initiate_auth_code_flow(
                target.scopes, redirect_uri=catcher.redirect_uri,
                login_hint=target.subject.account, prompt="select_account",
                response_mode="form_post")
            open_url(flow["auth_uri"])
            answer = catcher.wait(timeout, target)
            try:
                result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, answer)
            except ValueError:
                raise AuthError(target.subject.name, "the browser's answer does not belong to "
                                "this sign-in (state mismatch)",
                                f"run {target.subject.login_command} --browser again",
                                code="state") from None
            return result
        return sign_in(target, interaction)


def sign_in(provider: DelegatedTokenProvider, interaction: Interaction) -> SignInResult:
    """Run ``interaction`` on an empty cache; keep its grant only if it is the right account."""
    session = provider.session
    with session.replacing() as app:
        result = session.guard(lambda: interaction(app))
        account = _checked_account(result, provider)
        session.note_sign_in()
    expires = utcnow() + timedelta(seconds=int(result.get("expires_in", 0)))
    return SignInResult(provider.subject.name, account, expires)


def _checked_account(result: dict[str, Any], provider: DelegatedTokenProvider) -> str:
    subject = provider.subject
    if "access_token" not in result:
        raise error_for(result, subject)
    account = token_account(result.get("id_token_claims") or {}) or "an unknown account"
    if account.lower() != subject.account.lower():
        raise AuthError(subject.name, f"the sign-in returned {account}, but the mailbox signs "
                        f"in as {subject.account} (a browser still signed in to another "
                        "account answers without asking)", f"run {subject.login_command} "
                        f"again and choose {subject.account}, in a private browser window if "
                        "needed", code="wrong-account")
    if "refresh_token" not in result:
        raise AuthError(subject.name, "the identity provider issued no refresh token, so the "
                        "grant cannot be kept alive", "add offline_access to the app's "
                        "delegated permissions and grant consent", code="offline_access")
    return account


class _RedirectCatcher:
    """A one-shot HTTP listener on 127.0.0.1 that receives the browser's redirect."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.answer: dict[str, str] = {}
        self.arrived = threading.Event()

    @property
    def redirect_uri(self) -> str:
        """``http://127.0.0.1:<port>``, the loopback redirect Entra allows for native apps."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def receive(self, query: dict[str, str]) -> bool:
        """Keep the first answer carrying a code or an error; True if this was it."""
        if self.arrived.is_set() or not {"code", "error"} & query.keys():
            return False
        self.answer = query
        self.arrived.set()
        return True

    def wait(self, timeout: float, provider: DelegatedTokenProvider) -> dict[str, str]:
        """The redirect's query parameters, or an AuthError after ``timeout`` seconds."""
        if not self.arrived.wait(timeout):
            subject = provider.subject
            raise AuthError(subject.name, f"the browser did not come back within {timeout:.0f} s",
                            f"run {subject.login_command} again and finish the sign-in in the "
                            "browser, or use the device code (without --browser)",
                            code="timeout")
        return self.answer


@contextmanager
def _redirect_catcher(port: int) -> Iterator[_RedirectCatcher]:
    catcher: _RedirectCatcher

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            taken = catcher.receive(dict(parse_qsl(body.decode("utf-8", "replace"))))
            self._answer(taken)

        def do_GET(self) -> None:
            self._answer(False)  # favicon and the like; answers come by POST only

        def _answer(self, taken: bool) -> None:
            self.send_response(200 if taken else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(_DONE_PAGE if taken else b"")

        def log_message(self, format: str, *args: Any) -> None:
            """Requests carry the authorization code: never log them."""

    server = HTTPServer(("127.0.0.1", port), Handler)
    catcher = _RedirectCatcher(server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="ackmail-signin-redirect", daemon=True)
    thread.start()
    try:
        yield catcher
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
