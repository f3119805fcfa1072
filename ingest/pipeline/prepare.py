"""The pure first stage of the pipeline: what a message says, before the database is asked.

Parsing (which finds where its tokens appear) and the hash of its bytes need nothing
but the bytes and the configuration, so this stage can run anywhere: in the poller's thread,
or for backlogs in worker processes (``ingest.pipeline.pool``) while the poller
records the batch before. Never raises for anything a message contains.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.parse.base import ParsedMessage
from ingest.parse.message import parse_message
from ingest.pipeline.base import PipelineConfig
from ingest.store.events import content_hash


@dataclass(frozen=True)
class Prepared:
    """One message as parsed (with where it carries tokens), and its bytes' ``content_hash``."""

    parsed: ParsedMessage
    digest: str


def prepare(raw: bytes, config: PipelineConfig) -> Prepared:
    """Parse ``raw`` (a new message is cut to its reply only when it carries a token: it may
    answer a request) and hash its bytes."""
    return Prepared(parse_message(raw, config.parse, new_reply=False), content_hash(raw))
