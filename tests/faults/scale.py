"""How big the fault runs are: a bounded subset by default, the full matrix on demand.

``ACKMAIL_FAULTS=full`` runs the same tests with the numbers of issue #8 (20 kills over a
2,000-message backlog, every fault repeated); unset or ``ci`` keeps the suite fast.
``ACKMAIL_FAULTS_SEED=N`` replays a run: every random choice (when to kill, where to cut)
comes from that seed, and every failure message names the seed it ran with.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

SCALE_ENV = "ACKMAIL_FAULTS"
SEED_ENV = "ACKMAIL_FAULTS_SEED"


@dataclass(frozen=True)
class FaultScale:
    """The numbers one run uses; every test reads its own."""

    name: str
    backlog: int  # messages in the INBOX before the first poller of the kill test starts
    kills: int  # SIGKILL rounds during that backlog
    messages: int  # the backlog of every other fault test
    fetch_cuts: int  # connections reset inside a FETCH
    idle_cuts: int  # connections reset while the worker waits in IDLE
    restarts: int  # Dovecot restarts while the backlog drains
    database_cuts: int  # PostgreSQL unreachable for DATABASE_CUT_SECONDS
    token_expiries: int  # sessions ended after their token expired
    late_mail: int  # messages delivered after each IDLE cut


SCALES = {
    "ci": FaultScale("ci", backlog=300, kills=3, messages=150, fetch_cuts=1, idle_cuts=1,
                     restarts=1, database_cuts=1, token_expiries=1, late_mail=10),
    # Faults in a row back the poller off 1, 2, 4 ... s (RetryPolicy: the count starts
    # again only after a session that lasted 60 s), so six in a row already cost a minute.
    "full": FaultScale("full", backlog=2000, kills=20, messages=2000, fetch_cuts=6,
                       idle_cuts=5, restarts=5, database_cuts=3, token_expiries=6, late_mail=40),
}


def current_scale() -> FaultScale:
    """The scale named by $ACKMAIL_FAULTS (``ci`` when unset)."""
    name = os.environ.get(SCALE_ENV, "ci").strip().lower() or "ci"
    if name not in SCALES:
        raise ValueError(f"{SCALE_ENV}={name!r} is not a fault scale; use one of "
                         f"{', '.join(SCALES)} (or leave it unset for ci)")
    return SCALES[name]


def seeded_random() -> tuple[int, random.Random]:
    """The run's seed ($ACKMAIL_FAULTS_SEED, else a fresh one) and a generator seeded with it."""
    text = os.environ.get(SEED_ENV)
    try:
        seed = int(text) if text else random.SystemRandom().randrange(1 << 31)
    except ValueError:
        raise ValueError(f"{SEED_ENV}={text!r} is not a whole number") from None
    return seed, random.Random(seed)
