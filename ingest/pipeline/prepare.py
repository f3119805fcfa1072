"""The pure first stage of the pipeline: what a message says, before the database is asked.

Parsing, the places its tokens appear and the hash of its bytes need nothing but the
bytes and the configuration, so this stage can run anywhere: in the poller's thread,
or for backlogs in worker processes (``ingest.pipeline.pool``) while the poller
records the batch before. Never raises for anything a message contains.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.correlate.find import TokenCandidate, find_tokens
from ingest.parse.base import ParsedMessage
from ingest.parse.message import parse_message, with_reply
from ingest.pipeline.base import PipelineConfig
from ingest.store.events import content_hash


@dataclass(frozen=True)
class Prepared:
    """One message as parsed, with its token candidates and its bytes' ``content_hash``."""

    parsed: ParsedMessage
    candidates: tuple[TokenCandidate, ...]
    digest: str


def prepare(raw: bytes, config: PipelineConfig) -> Prepared:
    """Parse ``raw``, find where it carries tokens, and hash its bytes."""
    parsed = parse_message(raw, config.parse, new_reply=False)
    candidates = find_tokens(parsed, reply_address=config.reply_address)
    if candidates:  # it may answer a request: its text is the answer
        parsed = with_reply(parsed, config.parse)
    return Prepared(parsed, tuple(candidates), content_hash(raw))
