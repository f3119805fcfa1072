"""check_sender: strict From checks, the Authentication-Results reader and the verdict."""

from __future__ import annotations

import pytest

from ingest.parse.base import SenderInfo
from ingest.parse.mime import read_message
from ingest.parse.sender import FROM_CHECKS, check_sender, parse_authentication_results

MX = "mx.contoso.test"


def sender(headers: str, *, trusted: str | None = None, require_dmarc: bool = False) -> SenderInfo:
    raw = headers.strip("\n").replace("\n", "\r\n").encode() + b"\r\n\r\nApproved.\r\n"
    return check_sender(read_message(raw), trusted_authserv_id=trusted,
                        require_dmarc_pass=require_dmarc)


def results(*values: str, sender_line: str = "From: Alice <Alice@Example.com>") -> str:
    return "\n".join([sender_line, *(f"Authentication-Results: {value}" for value in values)])


# --- the From claim -----------------------------------------------------------------------

def test_plain_from_parses_strictly_and_stays_unjudged_without_trusted_results() -> None:
    info = sender('From: "Alice Example" <Alice@Example.COM>')
    assert (info.address, info.display_name, info.verified) == (
        "alice@example.com", "Alice Example", None)
    assert info.reasons == ("From parsed strictly: alice@example.com",
                            "Authentication-Results not checked: no trusted_authserv_id configured")


def test_obsolete_but_valid_name_syntax_is_accepted() -> None:
    info = sender("From: Alice B. Smith <alice@example.com>")
    assert (info.address, info.verified) == ("alice@example.com", None)


@pytest.mark.parametrize(("from_lines", "reason"), [
    ("", "no From header"),
    ("From: a@example.com\nFrom: b@example.com", "2 From headers; a message has exactly one"),
    ("From: a@example.com, b@example.com", "From names 2 addresses"),
    ("From: garbage", "From 'garbage' does not parse strictly (InvalidHeaderDefect)"),
    ("From: undisclosed-recipients:;", "does not parse strictly (empty)"),
    ('From: "ceo@contoso.com" <attacker@evil.test>',
     "display name contains a different address 'ceo@contoso.com'"),
    ("From: =?utf-8?q?ceo=40contoso.com?= <attacker@evil.test>",
     "display name contains a different address 'ceo@contoso.com'"),
    ("From: alice@example.org)<bob@example.org>", "From parses two ways"),
    ("From: alice@example.com <evil@x.test>", "From parses two ways"),
    ("From: Alice\u202e <alice@example.com>",
     "From contains a control or invisible character U+202E"),
    ("From: =?utf-8?q?Alice=E2=80=8B?= <alice@example.com>",
     "From contains a control or invisible character U+200B"),
    ("From: Alice\x00 <alice@example.com>",
     "From contains a control or invisible character U+0000"),
    ("From: <=?utf-8?q?alice=40example.com?=>", "does not parse strictly"),
    ("From: alice@example.com\nSender: mallory@evil.test",
     "Sender 'mallory@evil.test' differs from From 'alice@example.com'"),
])
def test_doubtful_from_is_unverified(from_lines: str, reason: str) -> None:
    info = sender(f"Subject: x\n{from_lines}")
    assert info.verified is False
    assert any(reason in item for item in info.reasons), info.reasons


def test_doubtful_from_stays_unverified_even_with_a_dmarc_pass() -> None:
    info = sender(results(f"{MX}; dmarc=pass header.from=example.com",
                          sender_line="From: alice@example.com\nFrom: bob@example.com"),
                  trusted=MX)
    assert info.verified is False
    assert "dmarc=pass by mx.contoso.test" in info.reasons


def test_display_name_in_an_unknown_charset_has_no_lone_surrogates() -> None:
    info = sender("From: =?x-unknown?q?caf=E9?= <alice@example.com>")
    assert (info.display_name, info.address) == ("caf\ufffd", "alice@example.com")


def test_display_name_in_a_python_only_codec_is_not_decoded() -> None:
    info = sender("From: =?unicode_escape?q?ceo=5Cx40contoso.com?= <evil@x.test>")
    assert "ceo@contoso.com" not in info.display_name


def test_reasons_quote_hostile_values_short_and_escaped() -> None:
    info = sender("From: " + "x\x01" * 500)
    reason = next(item for item in info.reasons if "does not parse" in item)
    assert "\\x01" in reason and "\x01" not in reason
    assert len(reason) < 200


def test_sender_equal_to_from_is_fine() -> None:
    assert sender("From: alice@example.com\nSender: Alice@Example.com").verified is None


def test_display_name_with_the_same_address_is_fine() -> None:
    assert sender('From: "alice@example.com" <alice@example.com>').verified is None


def test_every_from_check_is_a_named_function() -> None:
    assert len({check.__name__ for check in FROM_CHECKS}) == len(FROM_CHECKS)


# --- Authentication-Results reader -----------------------------------------------------------

def test_authentication_results_are_split_into_id_and_results() -> None:
    authserv_id, items = parse_authentication_results(
        "MX.Contoso.test 1; spf=pass (sender IP is 192.0.2.1 (yes)) smtp.mailfrom=bob@example.com;"
        ' dkim=fail reason="bad sig" header.d=example.com; dmarc=pass action=none'
        " header.from=Example.com")
    assert authserv_id == "mx.contoso.test"
    assert [(item.method, item.result) for item in items] == [
        ("spf", "pass"), ("dkim", "fail"), ("dmarc", "pass")]
    assert items[0].domain("smtp.mailfrom") == "example.com"
    assert items[2].domain("header.from") == "example.com"


def test_microsoft_365_header_has_no_authserv_id() -> None:
    authserv_id, items = parse_authentication_results(
        "spf=pass (sender IP is 40.107.1.1) smtp.mailfrom=contoso.com; dkim=pass (signature was "
        "verified) header.d=contoso.com;dmarc=pass action=none header.from=contoso.com;"
        "compauth=pass reason=100")
    assert authserv_id is None
    assert [item.method for item in items] == ["spf", "dkim", "dmarc", "compauth"]


def test_none_result_header_yields_no_results() -> None:
    assert parse_authentication_results("mx.test; none") == ("mx.test", ())


# --- the verdict ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "verified", "reason"), [
    (f"{MX}; dmarc=pass header.from=example.com", True, f"dmarc=pass by {MX}"),
    (f"{MX}; spf=pass smtp.mailfrom=example.com; dkim=fail header.d=example.com; "
     "dmarc=pass header.from=example.com", True, f"dmarc=pass by {MX}"),
    (f"{MX}; dkim=pass header.d=example.com; dmarc=fail header.from=example.com", False,
     f"dmarc=fail by {MX}"),
    (f"{MX}; spf=fail smtp.mailfrom=evil.test; dkim=none", False,
     f"spf=fail by {MX} and no dkim=pass"),
    (f"{MX}; spf=fail smtp.mailfrom=example.com; dkim=pass header.d=mail.example.com", True,
     f"dkim=pass by {MX} for mail.example.com, aligned with From"),
    (f"{MX}; dkim=fail header.d=example.com", False, f"dkim=fail by {MX} and no dkim=pass"),
    (f"{MX}; spf=pass smtp.mailfrom=bounce@example.com", True,
     f"spf=pass by {MX} for example.com, aligned with From"),
    (f"{MX}; spf=pass smtp.mailfrom=evil.test; dkim=pass header.d=evil.test", None,
     f"no aligned pass or fail for example.com by {MX}"),
    (f"{MX}; dmarc=pass header.from=evil.test", False,
     f"dmarc=pass by {MX} is for evil.test, not the From domain example.com"),
    (f"{MX}; spf=pass smtp.mailfrom=com", None, f"no aligned pass or fail for example.com by {MX}"),
    (f"{MX}; dmarc=none header.from=example.com", None,
     f"no aligned pass or fail for example.com by {MX}"),
])
def test_trusted_results_decide(value: str, verified: bool | None, reason: str) -> None:
    info = sender(results(value), trusted=MX)
    assert info.verified is verified
    assert info.reasons == ("From parsed strictly: alice@example.com", reason)


def test_untrusted_results_are_ignored_even_when_they_pass() -> None:
    info = sender(results("mx.evil.test; dmarc=pass header.from=example.com",
                          f"{MX}; dmarc=fail header.from=example.com"), trusted=MX)
    assert info.verified is False
    assert info.reasons[1:] == ("ignored Authentication-Results by 'mx.evil.test'",
                                f"dmarc=fail by {MX}")


def test_any_trusted_dmarc_fail_wins_over_a_pass() -> None:
    info = sender(results(f"{MX}; dmarc=pass header.from=example.com",
                          f"{MX}; dmarc=fail header.from=example.com"), trusted=MX)
    assert (info.verified, info.reasons[-1]) == (False, f"dmarc=fail by {MX}")


def test_only_forged_results_leave_the_sender_unjudged() -> None:
    info = sender(results("mx.evil.test; dmarc=pass header.from=example.com"), trusted=MX)
    assert info.verified is None
    assert info.reasons[-1] == f"no Authentication-Results by {MX}"


def test_results_are_not_checked_without_a_trusted_id() -> None:
    info = sender(results(f"{MX}; dmarc=fail header.from=example.com"))
    assert info.verified is None


@pytest.mark.parametrize(("value", "verified", "reason"), [
    (f"{MX}; dmarc=pass header.from=example.com", True, f"dmarc=pass by {MX}"),
    (f"{MX}; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com", False,
     f"dmarc=missing by {MX} (require_dmarc_pass)"),
    (f"{MX}; dmarc=bestguesspass header.from=example.com", False,
     f"dmarc=bestguesspass by {MX} (require_dmarc_pass)"),
])
def test_require_dmarc_pass(value: str, verified: bool, reason: str) -> None:
    info = sender(results(value), trusted=MX, require_dmarc=True)
    assert info.verified is verified
    assert info.reasons[-1] == reason


def test_require_dmarc_pass_without_any_trusted_results_is_unverified() -> None:
    info = sender(results(), trusted=MX, require_dmarc=True)
    assert info.verified is False
    assert info.reasons[-1] == f"no Authentication-Results by {MX}"


def test_problem_message_has_no_sender() -> None:
    info = check_sender(read_message(b"\x00garbage"), trusted_authserv_id=MX)
    assert (info.address, info.verified) == (None, False)
    assert info.reasons[0] == "no From header"
