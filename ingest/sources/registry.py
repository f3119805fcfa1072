"""The one registry of mailbox sources, keyed by the ``protocol`` setting."""

from __future__ import annotations

from collections.abc import Mapping

from ingest.errors import ConfigError
from ingest.sources.base import Source, SourceContext, SourceFactory, build_registry
from ingest.sources.graph import GraphSource
from ingest.sources.imap import ImapSource
from ingest.sources.maildir import MaildirSource
from ingest.sources.pop3 import Pop3Source

SOURCES: Mapping[str, SourceFactory] = build_registry(
    (ImapSource.protocol, ImapSource),
    (Pop3Source.protocol, Pop3Source),
    (MaildirSource.protocol, MaildirSource),
    (GraphSource.protocol, GraphSource),
)


def make_source(context: SourceContext,
                registry: Mapping[str, SourceFactory] = SOURCES) -> Source:
    """A new, unconnected source for the context's mailbox."""
    factory = registry.get(context.mailbox.protocol)
    if factory is None:
        raise ConfigError(
            f"mailbox '{context.mailbox.name}': protocol '{context.mailbox.protocol}' has no "
            f"source; use one of {', '.join(sorted(registry))}"
        )
    return factory(context)
