"""Initial schema and the ops views.

Tables: requests, recipients, messages, raw_messages, responses, checkpoints, events,
outcomes.
Views: pending_requests, decisions, ignored_messages.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Views give ops the common questions without joins; README.md documents them.
# Plain SQL that SQLite and PostgreSQL both accept.
VIEWS = {
    "pending_requests": """
        SELECT r.id, r.kind, r.ref, r.subject, r.policy, r.created_at, r.expires_at,
               (SELECT count(*) FROM recipients x WHERE x.request_id = r.id) AS responders,
               (SELECT count(*) FROM responses s WHERE s.request_id = r.id) AS responses
        FROM requests r
        WHERE r.status = 'pending'
    """,
    "decisions": """
        SELECT s.id AS response_id, r.id AS request_id, r.ref, r.kind, r.status AS request_status,
               s.address AS responder, s.verified_address, s.sender_verified, s.intent,
               s.counted, s.decisive, s.reason, s.reply_text, s.sent_at, s.received_at, s.mailbox,
               m.message_id_header, m.source_key
        FROM responses s
        JOIN requests r ON r.id = s.request_id
        LEFT JOIN messages m ON m.id = s.message_id
    """,
    "ignored_messages": """
        SELECT m.id, m.mailbox, m.source_key, m.message_id_header, m.sender, m.subject, m.kind,
               m.status, m.reason, m.received_at, m.recorded_at
        FROM messages m
        WHERE m.status IN ('ignored', 'quarantined')
    """,
}


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=100), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=True),
        sa.Column("first_watched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
        sa.UniqueConstraint("mailbox", "folder", name=op.f("uq_checkpoints_mailbox_folder")),
    )
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "approval",
                "alert",
                name="request_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                "acknowledged",
                "expired",
                name="request_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests")),
    )
    op.create_index(op.f("ix_requests_expires_at"), "requests", ["expires_at"])
    op.create_index(op.f("ix_requests_ref"), "requests", ["ref"])
    op.create_index(op.f("ix_requests_status_created_at"), "requests", ["status", "created_at"])
    op.create_index(op.f("ix_requests_created_at_id"), "requests", ["created_at", "id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=100), nullable=False),
        sa.Column("source_key", sa.String(length=500), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=True),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("uidl", sa.String(length=100), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("message_id_header", sa.String(length=998), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("sender_verified", sa.Boolean(), nullable=True),
        sa.Column("subject", sa.String(length=998), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "reply",
                "auto_reply",
                "bounce",
                "receipt",
                "new",
                name="message_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "processed",
                "ignored",
                "quarantined",
                name="message_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_messages_request_id_requests"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("mailbox", "source_key", name=op.f("uq_messages_mailbox_source_key")),
    )
    op.create_index(
        op.f("ix_messages_mailbox_content_hash"), "messages", ["mailbox", "content_hash"]
    )
    op.create_index(op.f("ix_messages_mailbox_recorded_at"), "messages", ["mailbox", "recorded_at"])
    op.create_index(op.f("ix_messages_message_id_header"), "messages", ["message_id_header"])
    op.create_index(op.f("ix_messages_request_id"), "messages", ["request_id"])
    op.create_index(op.f("ix_messages_status_recorded_at"), "messages", ["status", "recorded_at"])
    op.create_table(
        "recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("token", sa.String(length=16), nullable=False),
        sa.Column("token_nonce", sa.String(length=32), nullable=False),
        sa.Column("outgoing_message_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_recipients_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipients")),
        sa.UniqueConstraint("outgoing_message_id", name=op.f("uq_recipients_outgoing_message_id")),
        sa.UniqueConstraint("token", name=op.f("uq_recipients_token")),
    )
    op.create_index(op.f("ix_recipients_request_id"), "recipients", ["request_id"])
    op.create_table(
        "raw_messages",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_raw_messages_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_raw_messages")),
    )
    op.create_index(op.f("ix_raw_messages_stored_at"), "raw_messages", ["stored_at"])
    op.create_table(
        "responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("mailbox", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("verified_address", sa.String(length=320), nullable=True),
        sa.Column("sender_verified", sa.Boolean(), nullable=True),
        sa.Column(
            "intent",
            sa.Enum(
                "approve",
                "reject",
                "acknowledge",
                "unknown",
                name="intent",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reply_text", sa.Text(), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("decisive", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_responses_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipients.id"],
            name=op.f("fk_responses_recipient_id_recipients"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_responses_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responses")),
        sa.UniqueConstraint("message_id", name=op.f("uq_responses_message_id")),
    )
    op.create_index(op.f("ix_responses_received_at"), "responses", ["received_at"])
    op.create_index(
        op.f("ix_responses_request_id_received_at"), "responses", ["request_id", "received_at"]
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("response_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("mailbox", sa.String(length=100), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rule_trace", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_events_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_events_request_id_requests"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["responses.id"],
            name=op.f("fk_events_response_id_responses"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_processed_at_id"), "events", ["processed_at", "id"])
    op.create_index(op.f("ix_events_type"), "events", ["type"])
    op.create_index(op.f("ix_events_request_id"), "events", ["request_id"])
    op.create_index(op.f("ix_events_message_id"), "events", ["message_id"])
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sending",
                "delivered",
                "dead",
                name="outcome_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_outcomes_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcomes")),
    )
    op.create_index(op.f("ix_outcomes_event_id"), "outcomes", ["event_id"])
    op.create_index(
        op.f("ix_outcomes_status_next_attempt_at"), "outcomes", ["status", "next_attempt_at"]
    )
    for name, sql in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {sql}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_index(op.f("ix_outcomes_status_next_attempt_at"), table_name="outcomes")
    op.drop_index(op.f("ix_outcomes_event_id"), table_name="outcomes")
    op.drop_table("outcomes")
    op.drop_index(op.f("ix_events_message_id"), table_name="events")
    op.drop_index(op.f("ix_events_request_id"), table_name="events")
    op.drop_index(op.f("ix_events_type"), table_name="events")
    op.drop_index(op.f("ix_events_processed_at_id"), table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_raw_messages_stored_at"), table_name="raw_messages")
    op.drop_table("raw_messages")
    op.drop_index(op.f("ix_responses_request_id_received_at"), table_name="responses")
    op.drop_index(op.f("ix_responses_received_at"), table_name="responses")
    op.drop_table("responses")
    op.drop_index(op.f("ix_recipients_request_id"), table_name="recipients")
    op.drop_table("recipients")
    op.drop_index(op.f("ix_messages_status_recorded_at"), table_name="messages")
    op.drop_index(op.f("ix_messages_request_id"), table_name="messages")
    op.drop_index(op.f("ix_messages_message_id_header"), table_name="messages")
    op.drop_index(op.f("ix_messages_mailbox_recorded_at"), table_name="messages")
    op.drop_index(op.f("ix_messages_mailbox_content_hash"), table_name="messages")
    op.drop_table("messages")
    op.drop_index(op.f("ix_requests_created_at_id"), table_name="requests")
    op.drop_index(op.f("ix_requests_status_created_at"), table_name="requests")
    op.drop_index(op.f("ix_requests_ref"), table_name="requests")
    op.drop_index(op.f("ix_requests_expires_at"), table_name="requests")
    op.drop_table("requests")
    op.drop_table("checkpoints")
