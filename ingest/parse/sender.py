"""Who sent the message, and whether we believe it.

Two independent questions, both answered with reasons:
1. Does From name one address one unambiguous way? From is read with the strict
   modern parser (``email.headerregistry``) and again with ``getaddresses`` (the
   parser behind CVE-2023-27043); any disagreement, a second address, a display
   name that shows another address, hidden characters or a different Sender makes
   the sender unverified.
2. Did a receiving server we trust authenticate it? Only Authentication-Results
   (RFC 8601) headers whose authserv-id equals the configured one count: anybody can
   write the header, only our own server's copy is evidence. DMARC decides when
   present; otherwise SPF/DKIM passes must align with the From domain. On Microsoft
   365 the topmost header Exchange Online stamps decides instead (ingest.parse.exchange).

Alignment is approximated as "same domain or one is a subdomain of the other" (no
public-suffix list), which is the relaxed DMARC rule for all but multi-label
public suffixes such as co.uk.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.headerregistry import Address, AddressHeader, HeaderRegistry
from email.utils import getaddresses
from functools import lru_cache
from typing import cast

from ingest.parse.base import SenderInfo
from ingest.parse.exchange import BY, ExchangeTrust, exchange_verdict
from ingest.parse.html_text import excerpt, mail_charsets
from ingest.parse.mime import DecodedMessage

_FROM_HEADER = HeaderRegistry()["from"]  # built once: the registry makes a class per lookup
# CVE-2023-27043 fix: strict=True exists from 3.11.10/3.12.6 on; older versions are lenient.
_STRICT_GETADDRESSES = "strict" in inspect.signature(getaddresses).parameters
_GETADDRESSES_KW = {"strict": True} if _STRICT_GETADDRESSES else {}
# Defects that mean the strict parser had to guess; obsolete-but-valid syntax (an
# unquoted "B." in a name) is common in real mail and not one of them.
_FATAL_DEFECTS = frozenset(
    {"InvalidHeaderDefect", "NonPrintableDefect", "HeaderMissingRequiredValue", "HeaderParseError"})
_EMBEDDED_ADDRESS = re.compile(r"[^\s<>()\"',;:@]+@[^\s<>()\"',;:@]+\.[^\s<>()\"',;:@]+")
# C0/C1 controls and the invisible format characters used to disguise addresses
# (zero-width spaces and joiners, bidi overrides and isolates, soft hyphen, BOM).
_HIDDEN_CHARACTERS = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff]")
_COMMENT = re.compile(r"\([^()]*\)")
# Methods that start a new result even where a sender forgot the semicolon before them.
_METHODS = frozenset({"spf", "dkim", "dmarc", "compauth", "arc", "bimi", "iprev", "auth"})


@dataclass(frozen=True)
class FromClaim:
    """What the From (and Sender) headers say, read strictly and leniently."""

    values: tuple[str, ...]
    strict: tuple[Address, ...] = ()
    defects: tuple[str, ...] = ()
    lenient: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()

    @property
    def address(self) -> str | None:
        """The first strictly parsed address, lower-cased."""
        return self.strict[0].addr_spec.lower() if self.strict else None

    @property
    def display_name(self) -> str:
        """The first strictly parsed display name, decoded; unreadable bytes become U+FFFD."""
        name = self.strict[0].display_name if self.strict else ""
        return name if name.isascii() else name.encode("utf-8", "surrogateescape").decode(
            "utf-8", "replace")


def read_from(message: DecodedMessage) -> FromClaim:
    """Parse the first From strictly and leniently, and any Sender strictly."""
    values = message.headers.raw_all("from")
    if not values:
        return FromClaim(values)
    strict, defects = _strict_addresses(values[0])
    lenient = _lenient_addresses(values[0])
    senders = tuple(address.addr_spec.lower() for value in message.headers.raw_all("sender")
                    for address in _strict_addresses(value)[0])
    return FromClaim(values, strict, defects, lenient, senders)


# The strict parser costs ~115 us a call, more than the rest of the check together, and
# the same few responders send most replies: remember recent answers (pure functions).
@lru_cache(maxsize=4096)
def _lenient_addresses(value: str) -> tuple[str, ...]:
    """Lower-cased addresses as the standard library's lenient parser reads them."""
    return tuple(address.lower() for _, address in getaddresses([value], **_GETADDRESSES_KW)
                 if address)


@lru_cache(maxsize=4096)
def _strict_addresses(value: str) -> tuple[tuple[Address, ...], tuple[str, ...]]:
    """Addresses and defect names from the strict parser; a crash counts as a defect."""
    try:
        header = _FROM_HEADER("from", mail_charsets(value) if "=?" in value else value)
    except Exception:  # the header parser raises assorted errors on hostile input
        return (), ("HeaderParseError",)
    addresses = cast(AddressHeader, header).addresses
    return tuple(addresses), tuple(type(defect).__name__ for defect in header.defects)


def _no_from(claim: FromClaim) -> str | None:
    return "no From header" if not claim.values else None


def _several_from_headers(claim: FromClaim) -> str | None:
    count = len(claim.values)
    return f"{count} From headers; a message has exactly one" if count > 1 else None


def _unparsable(claim: FromClaim) -> str | None:
    fatal = sorted(set(claim.defects) & _FATAL_DEFECTS)
    if claim.values and (fatal or not claim.strict):
        return (f"From '{excerpt(claim.values[0])}' does not parse strictly "
                f"({', '.join(fatal) or 'empty'})")
    local, _, domain = (claim.address or "").rpartition("@")
    if claim.strict and not (local and domain):
        return f"From address '{excerpt(claim.address or '')}' has no domain"
    return None


def _several_addresses(claim: FromClaim) -> str | None:
    count = len(claim.strict)
    return f"From names {count} addresses; only one sender can decide" if count > 1 else None


def _two_readings(claim: FromClaim) -> str | None:
    strict = {address.addr_spec.lower() for address in claim.strict}
    if claim.values and set(claim.lenient) != strict:
        return (f"From parses two ways: '{excerpt(', '.join(sorted(strict)))}' strictly, "
                f"'{excerpt(', '.join(sorted(set(claim.lenient))))}' leniently")
    return None


def _display_name_address(claim: FromClaim) -> str | None:
    shown = _EMBEDDED_ADDRESS.findall(claim.display_name)
    other = next((item for item in shown if item.lower() != claim.address), None)
    return f"display name contains a different address '{excerpt(other)}'" if other else None


def _hidden_characters(claim: FromClaim) -> str | None:
    found = _HIDDEN_CHARACTERS.search(" ".join((*claim.values, claim.display_name)))
    if found:
        return f"From contains a control or invisible character U+{ord(found.group()):04X}"
    if claim.address and "=?" in claim.address:
        return "From address contains an encoded word; mail clients show something else"
    return None


def _different_sender(claim: FromClaim) -> str | None:
    other = next((sender for sender in claim.senders if sender != claim.address), None)
    if other is None:
        return None
    return f"Sender '{excerpt(other)}' differs from From '{excerpt(claim.address or '')}'"


# Each check returns a reason the From claim cannot be believed, or None.
FROM_CHECKS: tuple[Callable[[FromClaim], str | None], ...] = (
    _no_from, _several_from_headers, _unparsable, _several_addresses, _two_readings,
    _display_name_address, _hidden_characters, _different_sender,
)


@dataclass(frozen=True)
class AuthResult:
    """One ``method=result`` of an Authentication-Results header, with its properties."""

    method: str
    result: str
    props: dict[str, str] = field(default_factory=dict)

    def domain(self, *names: str) -> str | None:
        """The domain of the first property present (``user@domain`` or ``domain``)."""
        value = next((self.props[name] for name in names if name in self.props), None)
        return value.rpartition("@")[2].lower().strip(".") if value else None


def parse_authentication_results(value: str) -> tuple[str | None, tuple[AuthResult, ...]]:
    """Split an RFC 8601 header into its authserv-id and results (a small, lenient reader).

    Microsoft 365 omits the authserv-id; such a header yields ``None`` as the id.
    """
    for _ in range(3):  # nested comments, innermost first
        value = _COMMENT.sub(" ", value)
    segments = [segment.split() for segment in value.split(";")]
    authserv_id = None
    if segments[0] and "=" not in segments[0][0]:
        authserv_id = segments.pop(0)[0].lower()
    results = []
    for tokens in (part for segment in segments for part in _split_methods(segment)):
        if not tokens or "=" not in tokens[0]:
            continue  # "none", or the stray id Outlook.com inserts mid-header
        method, _, result = tokens[0].partition("=")
        pairs = (token.partition("=") for token in tokens[1:])
        props = {key.lower(): item.strip('"') for key, _, item in pairs if item}
        results.append(AuthResult(method.split("/")[0].lower(), result.lower(), props))
    return authserv_id, tuple(results)


def _split_methods(tokens: list[str]) -> list[list[str]]:
    """One segment's tokens cut before every ``method=`` token (a missing semicolon)."""
    parts: list[list[str]] = [[]]
    for token in tokens:
        if parts[-1] and token.partition("=")[0].split("/")[0].lower() in _METHODS:
            parts.append([])
        parts[-1].append(token)
    return parts


def _aligned(domain: str | None, from_domain: str) -> bool:
    if not domain or not from_domain:
        return False
    shorter = min(domain, from_domain, key=len)
    return "." in shorter and (domain == from_domain or domain.endswith("." + from_domain)
                               or from_domain.endswith("." + domain))


def _trusted_results(message: DecodedMessage,
                     trusted_id: str) -> tuple[list[AuthResult], list[str]]:
    results: list[AuthResult] = []
    ignored: list[str] = []
    for value in message.headers.raw_all("authentication-results"):
        authserv_id, items = parse_authentication_results(value)
        if authserv_id == trusted_id.lower():
            results.extend(items)
        else:
            shown = excerpt(authserv_id or "(no id)")
            ignored.append(f"ignored Authentication-Results by '{shown}'")
    return results, list(dict.fromkeys(ignored))


def _verdict(results: list[AuthResult], from_domain: str, by: str,
             require_dmarc_pass: bool) -> tuple[bool | None, str]:
    """The decision table: DMARC first, then unaligned failures, then aligned passes."""
    if not results:
        return (False if require_dmarc_pass else None), f"no Authentication-Results {by}"
    dmarcs = [r for r in results if r.method == "dmarc"]
    dmarc = next((r for r in dmarcs if r.result == "fail"), dmarcs[0] if dmarcs else None)
    dmarc_domain = dmarc.domain("header.from") if dmarc else None
    if dmarc and dmarc.result == "pass" and dmarc_domain not in (None, from_domain):
        return False, f"dmarc=pass {by} is for {dmarc_domain}, not the From domain {from_domain}"
    if require_dmarc_pass or (dmarc and dmarc.result in ("pass", "fail")):
        result = dmarc.result if dmarc else "missing"
        note = "" if result == "pass" or not require_dmarc_pass else " (require_dmarc_pass)"
        return result == "pass", f"dmarc={result} {by}{note}"
    dkim_pass = [r for r in results if r.method == "dkim" and r.result == "pass"]
    failed = [r.method for r in results if r.method in ("spf", "dkim") and r.result == "fail"]
    if failed and not dkim_pass:
        return False, f"{'+'.join(dict.fromkeys(failed))}=fail {by} and no dkim=pass"
    for passed in (*dkim_pass, *(r for r in results if r.method == "spf" and r.result == "pass")):
        domain = passed.domain("header.d", "header.i", "smtp.mailfrom")
        if _aligned(domain, from_domain):
            return True, f"{passed.method}=pass {by} for {domain}, aligned with From"
    return None, f"no aligned pass or fail for {from_domain or 'the sender'} {by}"


def _exchange_check(message: DecodedMessage, from_domain: str, trust: ExchangeTrust,
                    require_dmarc_pass: bool) -> tuple[bool | None, str]:
    """Exchange Online's topmost verdict; under require_dmarc_pass only a pass is not a fail."""
    topmost = message.headers.raw("authentication-results")
    if topmost is None:
        verified, reason = None, f"no Authentication-Results {BY}"
    else:
        verified, reason = exchange_verdict(
            message, parse_authentication_results(topmost), from_domain, trust)
    if require_dmarc_pass and verified is None:
        return False, f"{reason} (require_dmarc_pass)"
    return verified, reason


def check_sender(message: DecodedMessage, *, trusted_authserv_id: str | None = None,
                 require_dmarc_pass: bool = False,
                 exchange: ExchangeTrust | None = None) -> SenderInfo:
    """Who sent ``message`` and whether we believe it (see the module docstring).

    With ``exchange`` set, Exchange Online's own header decides (see ingest.parse.exchange)."""
    claim = read_from(message)
    problems = [problem for check in FROM_CHECKS if (problem := check(claim))]
    reasons = problems or [f"From parsed strictly: {claim.address}"]
    if exchange is not None:
        verified, reason = _exchange_check(
            message, (claim.address or "").rpartition("@")[2], exchange, require_dmarc_pass)
        reasons.append(reason)
    elif trusted_authserv_id is None:
        verified = None
        reasons.append("Authentication-Results not checked: no trusted_authserv_id configured")
    else:
        results, ignored = _trusted_results(message, trusted_authserv_id)
        from_domain = (claim.address or "").rpartition("@")[2]
        verified, reason = _verdict(results, from_domain, f"by {trusted_authserv_id}",
                                    require_dmarc_pass)
        reasons.extend((*ignored, reason))
    return SenderInfo(address=claim.address, display_name=claim.display_name,
                      verified=False if problems else verified, reasons=tuple(reasons))
