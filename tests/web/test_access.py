"""Who may read the pages: anyone on loopback; off loopback only with the bearer token."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from ingest.config.reader import Secret
from ingest.errors import ConfigError
from ingest.web.app import required_token
from tests.web.conftest import ServerFactory

TOKEN = Secret("s3cret-bearer-token-for-ops", "test")
ROUTES = ("/", "/requests", "/requests/1", "/messages", "/mailboxes", "/metrics",
          "/static/ackmail.css", "/no-such-page")


def fetch(url: str, token: str | None = None, method: str = "GET",
          host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    if host is not None:
        request.add_header("Host", host)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def test_off_loopback_every_route_but_healthz_needs_the_token(server: ServerFactory) -> None:
    # 127.0.0.2 is loopback to the kernel, but not one of the names the rule trusts.
    with server(host="127.0.0.2", token=TOKEN) as url:
        assert url.startswith("http://127.0.0.2:")
        assert fetch(f"{url}/healthz")[0] in (200, 503)
        for route in ROUTES:
            status, headers, body = fetch(f"{url}{route}")
            assert status == 401, route
            assert headers["WWW-Authenticate"] == 'Bearer realm="ackmail"'
            assert fetch(f"{url}{route}", token="wrong")[0] == 401
            assert fetch(f"{url}{route}", token=TOKEN.reveal() + "x")[0] == 401
            assert TOKEN.reveal().encode() not in body
        assert fetch(f"{url}/requests", token=TOKEN.reveal())[0] == 200
        assert fetch(f"{url}/metrics", token=TOKEN.reveal())[0] == 200
        assert fetch(f"{url}/no-such-page", token=TOKEN.reveal())[0] == 404


def test_loopback_needs_no_token(server: ServerFactory) -> None:
    with server() as url:
        for route in ROUTES[:-1]:
            status = fetch(f"{url}{route}")[0]
            assert status in (200, 404), route  # request #1 may not exist
        assert fetch(f"{url}/requests")[0] == 200


def test_loopback_serves_only_loopback_names(server: ServerFactory) -> None:
    """A page elsewhere that points its name at 127.0.0.1 (DNS rebinding) reads nothing."""
    with server() as url:
        port = url.rsplit(":", 1)[1]
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
            assert fetch(f"{url}/requests", host=host)[0] == 200, host
        for host in (f"evil.example:{port}", "127.0.0.1.evil.example", f"10.0.0.1:{port}"):
            status, _, body = fetch(f"{url}/requests", host=host)
            assert status == 403 and b"only requests addressed to 127.0.0.1" in body, host
        assert fetch(f"{url}/healthz", host="evil.example")[0] in (200, 503)  # probes pass


def test_only_get_and_head_are_served(server: ServerFactory) -> None:
    with server() as url:
        status, headers, _ = fetch(f"{url}/requests", method="POST")
        assert (status, headers["Allow"]) == (405, "GET, HEAD")
        status, headers, body = fetch(f"{url}/requests", method="HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_every_answer_carries_the_security_headers(server: ServerFactory) -> None:
    with server() as url:
        for route in ("/requests", "/no-such-page", "/healthz"):
            _, headers, _ = fetch(f"{url}{route}")
            assert "script-src" not in headers["Content-Security-Policy"]
            assert headers["Content-Security-Policy"].startswith("default-src 'none'")
            assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_hosts_need_no_token(host: str) -> None:
    assert required_token(host, None) is None
    assert required_token(host, TOKEN) is None


@pytest.mark.parametrize("host", ["127.0.0.2", "0.0.0.0", "ops.example.test"])
def test_other_hosts_need_a_token(host: str) -> None:
    assert required_token(host, TOKEN) is TOKEN
    with pytest.raises(ConfigError, match=rf"'{host}' \(not loopback\) needs \[serve\] token"):
        required_token(host, None)
