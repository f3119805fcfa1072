"""The status values the database stores, importable without loading SQLAlchemy.

The CLI offers them as choices when it builds its parser, which must stay fast.
"""

from __future__ import annotations

import enum


class RequestKind(enum.StrEnum):
    APPROVAL = "approval"
    ALERT = "alert"


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    ACKNOWLEDGED = "acknowledged"
    EXPIRED = "expired"


class MessageStatus(enum.StrEnum):
    PROCESSED = "processed"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"


class OutcomeStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"
