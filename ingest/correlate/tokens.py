"""Correlation tokens: short, typeable, case-insensitive, and unforgeable without the secret.

A token is 8 Crockford base32 characters written ``R7K2-9QXM`` (its written form and
where replies carry it: ``ingest.parse.tokens``): the first 40 bits of
HMAC-SHA256(token_secret, request id | recipient address | nonce). The database keeps
the nonce, so a token found in a reply is checked by recomputing the HMAC and comparing
in constant time: a row inserted without the secret, or a token edited by hand, does
not verify. Binding the address into the MAC is what
makes a forwarded approval useless to its new reader.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from ingest.parse.tokens import ALPHABET


def new_nonce() -> str:
    """A fresh random nonce for one recipient's token."""
    return secrets.token_hex(8)


def compute(secret: str, request_id: int, address: str, nonce: str) -> str:
    """The token for one recipient of one request."""
    message = f"ackmail-token-v1|{request_id}|{address.lower()}|{nonce}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    bits = int.from_bytes(digest[:5], "big")
    chars = [ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5)]
    return f"{''.join(chars[:4])}-{''.join(chars[4:])}"


@lru_cache(maxsize=4096)  # a reply carries its token in the subject and the footer
def verify(secret: str, token: str, request_id: int, address: str, nonce: str) -> bool:
    """True when ``token`` is exactly the one the secret gives for these fields."""
    expected = compute(secret, request_id, address, nonce)
    return hmac.compare_digest(expected.encode(), token.encode())

