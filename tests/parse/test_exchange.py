"""Exchange Online mode: the topmost Authentication-Results Exchange stamps decides.

The header values follow raw Exchange Online messages published in Microsoft's
anti-spam message header documentation and in parser issue threads (quickFilters #188,
MimeKit, authres_status), with their domains replaced.
"""

from __future__ import annotations

import pytest

from ingest.parse.base import SenderInfo
from ingest.parse.exchange import ExchangeTrust
from ingest.parse.mime import read_message
from ingest.parse.sender import check_sender

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
ISSUE_PASS = ("spf=pass (sender IP is 203.0.113.5) smtp.mailfrom=contoso.com; dkim=pass "
              "(signature was verified) header.d=contoso.com;dmarc=pass action=none "
              "header.from=contoso.com;compauth=pass reason=100")


def exchange(*headers: str, tenant: str | None = None, require_dmarc: bool = False,
             sender_line: str = "From: Alice <alice@contoso.com>") -> SenderInfo:
    lines = [*headers, sender_line]
    raw = "\r\n".join(lines).encode() + b"\r\n\r\nApproved.\r\n"
    return check_sender(read_message(raw), require_dmarc_pass=require_dmarc,
                        exchange=ExchangeTrust(tenant_id=tenant))


def ar(value: str) -> str:
    return f"Authentication-Results: {value}"


@pytest.mark.parametrize(("value", "verified", "reason"), [
    (ISSUE_PASS, True, "dmarc=pass by Exchange Online for contoso.com"),
    # folded over several lines, as Exchange writes it
    ("spf=pass (sender IP is 203.0.113.5)\r\n smtp.mailfrom=contoso.com; dkim=pass\r\n "
     "(signature was verified) header.d=contoso.com;dmarc=pass action=none\r\n "
     "header.from=contoso.com;compauth=pass reason=100", True, "dmarc=pass"),
    # dmarc=bestguesspass (no DMARC record) but compauth explicit pass
    ("spf=pass (sender IP is 198.51.100.7) smtp.mailfrom=contoso.com; dkim=none (message not "
     "signed) header.d=none;dmarc=bestguesspass action=none header.from=contoso.com;"
     "compauth=pass reason=109", True, "compauth=pass reason=109 by Exchange Online"),
    # implicit authentication pass (7xx)
    ("spf=none (sender IP is 198.51.100.7) smtp.mailfrom=contoso.com; dkim=none (message not "
     "signed) header.d=none;dmarc=none action=none header.from=contoso.com;"
     "compauth=pass reason=703", True, "compauth=pass reason=703"),
    # quickFilters #188: a bulk sender with a broken signature
    ("spf=none (sender IP is 103.177.230.37) smtp.mailfrom=5129.convertkit.com; dkim=fail "
     "(signature did not verify) header.d=sendgrid.info;dmarc=fail action=none "
     "header.from=contoso.com;compauth=fail reason=001", False, "dmarc=fail by Exchange Online"),
    # compauth fail without DMARC: the reason is kept
    ("spf=fail (sender IP is 192.0.2.9) smtp.mailfrom=contoso.com; dkim=none (message not "
     "signed) header.d=none;dmarc=none action=none header.from=contoso.com;"
     "compauth=fail reason=601", False, "compauth=fail reason=601 by Exchange Online"),
    # DMARC pass for another domain than From
    ("spf=pass (sender IP is 192.0.2.9) smtp.mailfrom=evil.test; dkim=pass (signature was "
     "verified) header.d=evil.test;dmarc=pass action=none header.from=evil.test;"
     "compauth=pass reason=100", False, "is for evil.test, not the From domain contoso.com"),
    # soft pass and none are never a pass
    ("spf=softfail (sender IP is 192.0.2.9) smtp.mailfrom=contoso.com; dkim=none (message not "
     "signed) header.d=none;dmarc=none action=none header.from=contoso.com;"
     "compauth=softpass reason=201", None, "dmarc=none compauth=softpass by Exchange Online: "
     "not verified"),
    ("spf=none (sender IP is 192.0.2.9) smtp.mailfrom=contoso.com; dkim=none (message not "
     "signed) header.d=none;dmarc=none action=none header.from=contoso.com;compauth=none "
     "reason=405", None, "dmarc=none compauth=none by Exchange Online: not verified"),
    # compauth=pass with a reason that is not 1xx/7xx (an override) is not a pass
    ("spf=none smtp.mailfrom=contoso.com; dmarc=none action=none header.from=contoso.com;"
     "compauth=pass reason=451", None, "not verified"),
    # missing semicolons between methods
    ("spf=pass (sender IP is 203.0.113.5) smtp.mailfrom=contoso.com dkim=pass "
     "header.d=contoso.com dmarc=pass action=none header.from=contoso.com compauth=pass "
     "reason=100", True, "dmarc=pass by Exchange Online"),
    # the stray bare domain Outlook.com inserts mid-header
    ("spf=pass (sender IP is 203.0.113.5) smtp.mailfrom=contoso.com; contoso.com; dkim=pass "
     "(signature was verified) header.d=contoso.com;contoso.com; dmarc=pass action=none "
     "header.from=contoso.com;compauth=pass reason=100", True, "dmarc=pass"),
    # ARC form with Microsoft's own authserv-id is another server's header
    ("mx.microsoft.com 1; spf=pass smtp.mailfrom=contoso.com; dmarc=pass action=none "
     "header.from=contoso.com; dkim=pass header.d=contoso.com; arc=none", None,
     "topmost Authentication-Results is by 'mx.microsoft.com', not Exchange Online"),
    ("none", None, "by 'none', not Exchange Online: not verified"),
    ("spf=none smtp.mailfrom=contoso.com", None,
     "no dmarc or compauth result by Exchange Online: not verified"),
    ("", None, "not verified"),
    ("(((((", None, "not verified"),
    ("dmarc=pass header.from", None, "names no header.from: not verified"),
])
def test_exchange_verdicts(value: str, verified: bool | None, reason: str) -> None:
    info = exchange(ar(value))
    assert info.verified is verified
    assert reason in info.reasons[-1]


def test_only_the_topmost_header_counts_a_spoofed_one_lower_down_does_not() -> None:
    failing = ("spf=fail (sender IP is 192.0.2.9) smtp.mailfrom=contoso.com; dkim=none "
               "header.d=none;dmarc=fail action=quarantine header.from=contoso.com;"
               "compauth=fail reason=000")
    assert exchange(ar(failing), ar(ISSUE_PASS)).verified is False
    assert exchange(ar(ISSUE_PASS), ar(failing)).verified is True


@pytest.mark.parametrize("name", [
    "Authentication-Results-Original", "ARC-Authentication-Results",
    "X-MS-Exchange-Authentication-Results", "Authentication-Results-Untrusted",
])
def test_copies_under_other_names_never_confer_trust(name: str) -> None:
    info = exchange(f"{name}: {ISSUE_PASS}")
    assert info.verified is None
    assert info.reasons[-1] == "no Authentication-Results by Exchange Online"
    assert exchange(f"{name}: {ISSUE_PASS}", require_dmarc=True).verified is False


def test_original_copy_above_does_not_hide_a_failing_topmost_header() -> None:
    failing = "dmarc=fail action=none header.from=contoso.com;compauth=fail reason=000"
    info = exchange(f"Authentication-Results-Original: {ISSUE_PASS}", ar(failing))
    assert (info.verified, info.reasons[-1]) == (False, "dmarc=fail by Exchange Online")


def test_configured_tenant_must_be_the_topmost_cross_tenant_id() -> None:
    ours = f"X-MS-Exchange-CrossTenant-Id: {TENANT}"
    theirs = f"X-MS-Exchange-CrossTenant-Id: {OTHER_TENANT}"
    assert exchange(ours, ar(ISSUE_PASS), tenant=TENANT.upper()).verified is True
    mismatch = exchange(theirs, ours, ar(ISSUE_PASS), tenant=TENANT)
    assert mismatch.verified is None
    assert f"'{OTHER_TENANT}' is not the configured tenant {TENANT}" in mismatch.reasons[-1]
    missing = exchange(ar(ISSUE_PASS), tenant=TENANT)
    assert missing.reasons[-1] == (f"no X-MS-Exchange-CrossTenant-Id; expected tenant {TENANT}: "
                                   "not verified")
    assert exchange(theirs, ar(ISSUE_PASS), tenant=TENANT, require_dmarc=True).verified is False


INTERNAL = ("dkim=none (message not signed) header.d=none;dmarc=none action=none "
            "header.from=contoso.com;")


def test_intra_tenant_mail_is_trusted_when_exchange_says_internal_for_our_tenant() -> None:
    info = exchange(f"X-MS-Exchange-CrossTenant-Id: {TENANT}",
                    "X-MS-Exchange-Organization-AuthAs: Internal", ar(INTERNAL), tenant=TENANT)
    assert (info.verified, info.reasons[-1]) == (
        True, f"internal mail of tenant {TENANT} by Exchange Online")


@pytest.mark.parametrize(("headers", "tenant"), [
    ((f"X-MS-Exchange-CrossTenant-Id: {TENANT}", "X-MS-Exchange-Organization-AuthAs: Internal"),
     None),  # no tenant configured: "Internal" cannot be tied to this organisation
    ((f"X-MS-Exchange-CrossTenant-Id: {TENANT}", "X-MS-Exchange-Organization-AuthAs: Anonymous"),
     TENANT),
    ((f"X-MS-Exchange-CrossTenant-Id: {OTHER_TENANT}",
      "X-MS-Exchange-Organization-AuthAs: Internal"), TENANT),
])
def test_intra_tenant_dmarc_none_is_not_verified_otherwise(headers: tuple[str, ...],
                                                           tenant: str | None) -> None:
    assert exchange(*headers, ar(INTERNAL), tenant=tenant).verified is None
    assert exchange(*headers, ar(INTERNAL), tenant=tenant, require_dmarc=True).verified is False


def test_require_dmarc_pass_accepts_an_exchange_pass() -> None:
    info = exchange(ar(ISSUE_PASS), require_dmarc=True)
    assert (info.verified, info.reasons) == (
        True, ("From parsed strictly: alice@contoso.com",
               "dmarc=pass by Exchange Online for contoso.com"))


def test_a_doubtful_from_stays_unverified_despite_an_exchange_pass() -> None:
    info = exchange(ar(ISSUE_PASS), sender_line='From: "ceo@contoso.com" <alice@contoso.com>')
    assert info.verified is False


def test_a_configured_trusted_authserv_id_may_stamp_the_topmost_header() -> None:
    raw = (f"Authentication-Results: mx.contoso.test; {ISSUE_PASS}\r\n"
           "From: alice@contoso.com\r\n\r\nok\r\n").encode()
    trust = ExchangeTrust(trusted_authserv_id="MX.contoso.test")
    assert check_sender(read_message(raw), exchange=trust).verified is True
    assert check_sender(read_message(raw), exchange=ExchangeTrust()).verified is None
