"""Every sub-command, registered in one place; each module adds its own parsers.

A command module imports only the standard library and light parts of ingest at
its top, and what its handler runs inside the handler, so building the parser
(``ackmail --help``) loads no database, HTTP or template library.
"""

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
    messages,
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
    messages.register,
    stats.register,
    rules.register,
    dispatch.register,
    outcomes.register,
    serve.register,
)
