"""Every sub-command, registered in one place; each module adds its own parsers."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ingest.cli.commands import (
    auth,
    check,
    db,
    demo,
    dispatch,
    init,
    listing,
    outcomes,
    parse,
    poll,
    request,
    rules,
    serve,
    stats,
)

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# Order here is the order `ackmail --help` lists them.
COMMANDS: tuple[Register, ...] = (
    demo.register,
    init.register,
    db.register,
    request.register,
    auth.register,
    check.register,
    poll.register,
    parse.register,
    listing.register,
    stats.register,
    rules.register,
    dispatch.register,
    outcomes.register,
    serve.register,
)
