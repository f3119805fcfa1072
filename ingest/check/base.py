"""The contracts of ``ackmail check``: a step, its result, the report, and the probe the
steps of one check share (the connection being built, the credentials, notes)."""

from __future__ import annotations

import poplib
from collections.abc import Callable
from dataclasses import dataclass, field

from imapclient import IMAPClient

from ingest.auth import AccessToken, LoginCredentials, TokenProviders
from ingest.config import MailboxConfig
from ingest.errors import AckmailError
from ingest.sources.graph_http import GraphClient
from ingest.sources.imap_session import close_imap
from ingest.sources.pop3_session import close_pop3
from ingest.timeutil import utcnow


class StepFailed(AckmailError):
    """A check step failed; ``notes`` add detail lines (e.g. what the token lacks)."""

    def __init__(self, message: str, notes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.notes = notes


@dataclass(frozen=True)
class StepResult:
    """One line of the report."""

    step: str
    ok: bool
    detail: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckReport:
    """Every step run for one mailbox, in order; the last one failed unless ``ok``."""

    mailbox: str
    steps: tuple[StepResult, ...]

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def failed_step(self) -> str | None:
        return next((step.step for step in self.steps if not step.ok), None)

    def lines(self) -> list[str]:
        """The report as text, one line per step (and its notes)."""
        out = [f"mailbox '{self.mailbox}'"]
        for step in self.steps:
            out.append(f"  {'ok' if step.ok else 'FAILED':<7}{step.step:<13}{step.detail}")
            out += [f"{'':<22}- {note}" for note in step.notes]
        return out


@dataclass
class Probe:
    """What the steps of one check share: the mailbox, and the connection being built."""

    box: MailboxConfig
    providers: TokenProviders
    timeout: float
    imap: IMAPClient | None = None
    pop: poplib.POP3 | None = None
    graph: GraphClient | None = None
    credentials: LoginCredentials | None = None
    notes: list[str] = field(default_factory=list)

    def fresh_token(self) -> tuple[AccessToken, int]:
        """A new token from the identity provider, not the cached one (a changed secret or
        a revoked grant shows up here), kept as the credentials later steps use; with the
        minutes it is valid."""
        token = self.providers.for_subject(self.box).fresh_token()
        self.credentials = LoginCredentials("xoauth2", self.box.username, token.secret)
        return token, max(0, int((token.expires_at - utcnow()).total_seconds() // 60))

    def close(self) -> None:
        if self.imap is not None:
            close_imap(self.imap)
        if self.pop is not None:
            close_pop3(self.pop, commit=False)
        if self.graph is not None:
            self.graph.close()


Step = Callable[[Probe], str]
