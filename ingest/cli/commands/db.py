"""``ackmail db upgrade | current | downgrade``: the schema, through Alembic."""

from __future__ import annotations

import argparse

from ingest.cli.context import CommandContext


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("db", help="database schema: upgrade, current revision")
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="upgrade the schema to the newest revision")
    upgrade.set_defaults(handler=run_upgrade)
    current = actions.add_parser("current", help="show the schema revision")
    current.set_defaults(handler=run_current)
    downgrade = actions.add_parser(
        "downgrade", help="take the schema back to REVISION (base: drop all)"
    )
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=run_downgrade)


def run_upgrade(ctx: CommandContext) -> int:
    from ingest.store import migrate
    from ingest.store.db import safe_url

    before = migrate.current_revision(ctx.engine)
    migrate.upgrade(ctx.engine)
    after = migrate.current_revision(ctx.engine)
    where = safe_url(ctx.settings.database_url)
    if before == after:
        print(f"{where}: already at revision {after}")
    else:
        print(f"{where}: upgraded from {before or 'empty'} to {after}")
    return 0


def run_current(ctx: CommandContext) -> int:
    from ingest.store import migrate
    from ingest.store.db import safe_url

    current = migrate.current_revision(ctx.engine)
    head = migrate.head_revision()
    state = (
        "up to date" if current == head else f"this ackmail needs {head}: run 'ackmail db upgrade'"
    )
    print(f"{safe_url(ctx.settings.database_url)}: revision {current or 'none (empty)'} ({state})")
    return 0


def run_downgrade(ctx: CommandContext) -> int:
    from ingest.store import migrate
    from ingest.store.db import safe_url

    migrate.downgrade(ctx.engine, ctx.args.revision)
    print(
        f"{safe_url(ctx.settings.database_url)}: now at revision "
        f"{migrate.current_revision(ctx.engine) or 'none (empty)'}"
    )
    return 0
