"""Exchange Online's verdict on the sender, read from the header it stamps on receipt.

Exchange Online writes its Authentication-Results without an authserv-id, so the
``trusted_authserv_id`` rule can never match it. In this mode only the topmost header
named exactly Authentication-Results counts: Exchange prepends its own on receipt, and
anything lower down (or in -Original, ARC- and X-MS-Exchange- copies) was written
before Exchange saw the message, possibly by the sender.

Mail between users of one tenant often carries ``dmarc=none``. The documented choice:
it is trusted only when ``exchange_tenant_id`` is configured, the topmost
X-MS-Exchange-CrossTenant-Id names that tenant and the topmost
X-MS-Exchange-Organization-AuthAs says Internal. Exchange's header firewall strips
X-MS-Exchange-Organization-* headers from mail entering from outside the organisation,
so only Exchange itself can have written that value; without a configured tenant the
claim cannot be tied to this organisation and such mail stays not verified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.parse.html_text import excerpt
from ingest.parse.mime import DecodedMessage

if TYPE_CHECKING:  # sender.py imports this module; the type alone is needed here
    from ingest.parse.sender import AuthResult

BY = "by Exchange Online"
# compauth reasons 1xx (explicit pass) and 7xx (implicit pass) are passes; 0xx fail,
# 2xx soft pass, 3xx-6xx not checked or overridden: never a pass.
_PASS_REASON = re.compile(r"[17]\d\d")


@dataclass(frozen=True)
class ExchangeTrust:
    """How far Exchange Online's stamped verdict is believed."""

    tenant_id: str | None = None
    trusted_authserv_id: str | None = None


def _topmost(message: DecodedMessage, name: str) -> str | None:
    value = message.headers.raw(name)
    return value.strip() if value is not None else None


def _tenant_problem(message: DecodedMessage, trust: ExchangeTrust) -> str | None:
    if trust.tenant_id is None:
        return None
    stamped = _topmost(message, "x-ms-exchange-crosstenant-id")
    if stamped is None:
        return f"no X-MS-Exchange-CrossTenant-Id; expected tenant {trust.tenant_id}"
    if stamped.lower() != trust.tenant_id.lower():
        return (f"X-MS-Exchange-CrossTenant-Id '{excerpt(stamped)}' is not the configured "
                f"tenant {trust.tenant_id}")
    return None


def _internal(message: DecodedMessage, trust: ExchangeTrust) -> bool:
    auth_as = _topmost(message, "x-ms-exchange-organization-authas") or ""
    return trust.tenant_id is not None and auth_as.lower() == "internal"


def exchange_verdict(message: DecodedMessage, topmost: tuple[str | None, tuple[AuthResult, ...]],
                     from_domain: str, trust: ExchangeTrust) -> tuple[bool | None, str]:
    """True (pass), False (fail) or None (not verified), with the reason.

    ``topmost`` is the topmost Authentication-Results, already split by the reader."""
    authserv_id, results = topmost
    if authserv_id not in (None, (trust.trusted_authserv_id or "").lower() or None):
        return None, (f"topmost Authentication-Results is by '{excerpt(authserv_id or '')}', "
                      "not Exchange Online: not verified")
    tenant = _tenant_problem(message, trust)
    if tenant:
        return None, f"{tenant}: not verified"
    found = {item.method: item for item in reversed(results)}  # first of each method wins
    dmarc, compauth = found.get("dmarc"), found.get("compauth")
    reason = compauth.props.get("reason", "") if compauth else ""
    for item in (dmarc, compauth):
        if item is not None and item.result == "fail":
            detail = f" reason={reason}" if item is compauth else ""
            return False, f"{item.method}=fail{detail} {BY}"
    if dmarc is not None and dmarc.result == "pass":
        domain = dmarc.domain("header.from")
        if domain == from_domain:
            return True, f"dmarc=pass {BY} for {from_domain}"
        if domain is None:
            return None, f"dmarc=pass {BY} names no header.from: not verified"
        return False, f"dmarc=pass {BY} is for {domain}, not the From domain {from_domain}"
    if compauth is not None and compauth.result == "pass" and _PASS_REASON.fullmatch(reason):
        return True, f"compauth=pass reason={reason} {BY}"
    if _internal(message, trust):
        return True, f"internal mail of tenant {trust.tenant_id} {BY}"
    shown = " ".join(f"{item.method}={item.result}" for item in (dmarc, compauth) if item)
    return None, f"{excerpt(shown or 'no dmarc or compauth result')} {BY}: not verified"
