"""Contracts of the pipeline: its configuration, what goes in, and what comes out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ingest.config import Settings
from ingest.errors import ConfigError
from ingest.parse.base import Intent
from ingest.parse.exchange import ExchangeTrust
from ingest.parse.message import ParseOptions
from ingest.parse.short_answer import without_affirmatives
from ingest.parse.vocabulary import Vocabulary, load_vocabulary
from ingest.sources.base import SourceRef
from ingest.store.models import MessageStatus


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline needs from the settings, resolved once."""

    parse: ParseOptions
    token_secret: str

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineConfig:
        secret = settings.security.token_secret
        if secret is None:
            raise ConfigError(
                f"{settings.path}: [security] token_secret is not set; it is needed to check "
                "reply tokens (run 'ackmail init' to generate one)"
            )
        return cls(parse_options(settings), secret.reveal())


def parse_options(settings: Settings) -> ParseOptions:
    """The parser's configuration: sender trust, the intent vocabulary, the reply address."""
    return ParseOptions(
        limits=settings.limits,
        trusted_authserv_id=settings.security.trusted_authserv_id,
        require_dmarc_pass=settings.security.require_dmarc_pass,
        exchange=_exchange_trust(settings),
        vocabulary=_vocabulary(settings),
        reply_address=settings.requests.reply_address,
    )


def _vocabulary(settings: Settings) -> Vocabulary:
    vocabulary = load_vocabulary(settings.intents_file)
    return vocabulary if settings.intents_affirmatives else without_affirmatives(vocabulary)


def _exchange_trust(settings: Settings) -> ExchangeTrust | None:
    security = settings.security
    if not security.trust_exchange_online:
        return None
    return ExchangeTrust(security.exchange_tenant_id, security.trusted_authserv_id)


@dataclass(frozen=True)
class Arrival:
    """A message to process. Messages that arrived before ``backlog_before`` (when the
    mailbox was first watched, or ``poll --from``) are old mail: unless they answer a
    request they are left alone, without events, so onboarding acts on nothing."""

    source: SourceRef
    raw: bytes
    backlog_before: datetime | None = None


@dataclass(frozen=True)
class Processed:
    """What became of one message. A duplicate has no ``status`` of its own: ``recorded``
    is the status of its first record (which decides where the server files it)."""

    status: MessageStatus | None
    reason: str
    message_id: int | None = None
    request_id: int | None = None
    intent: Intent = Intent.UNKNOWN
    decisive: bool = False
    recorded: MessageStatus | None = None

    @property
    def duplicate(self) -> bool:
        return self.status is None

    @property
    def filed_as(self) -> MessageStatus:
        """The status that decides where the message goes on the server."""
        return self.status or self.recorded or MessageStatus.PROCESSED
