"""``ackmail init``: a commented example configuration, generated keys, an upgraded database."""

from __future__ import annotations

import argparse
import os
from importlib import resources
from pathlib import Path

from ingest.cli.context import CommandContext
from ingest.errors import UserError

KEY_NAMES = ("token_secret", "cache_key")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "init", help="write an example ackmail.toml (if none) and upgrade the database"
    )
    parser.set_defaults(handler=run_init)


def run_init(ctx: CommandContext) -> int:
    from ingest.store import migrate
    from ingest.store.db import safe_url

    path = ctx.config_path
    written = not path.exists()
    if written:
        _write_example(path)
        print(f"{path}: written, with rules.toml beside it")
    else:
        print(f"{path}: exists, left as it is")
    migrate.upgrade(ctx.engine)
    print(
        f"{safe_url(ctx.settings.database_url)}: at revision {migrate.current_revision(ctx.engine)}"
    )
    print(_next_steps(path, has_mailbox=bool(ctx.settings.mailboxes) and not written))
    return 0


def _next_steps(path: Path, *, has_mailbox: bool) -> str:
    """What to do after init: a mailbox first, then the check that it can be read."""
    if has_mailbox:
        return ("next: 'ackmail check' tests each mailbox, then 'ackmail poll' reads them "
                "('ackmail demo' shows the whole pipeline)")
    return (f"next: add your mailbox to {path} (uncomment and edit a [[mailbox]] example), "
            "then run 'ackmail check' to test it and 'ackmail poll' to read it; "
            "'ackmail demo' shows the whole pipeline first")


def _template(name: str) -> str:
    return resources.files("ingest.cli").joinpath(f"templates/{name}").read_text("utf-8")


def _write_example(path: Path) -> None:
    """The example config, the keys it names, and the default rules file beside it."""
    key_dir = path.parent / ".ackmail"
    rules = path.parent / "rules.toml"
    try:
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in KEY_NAMES:
            _write_key(key_dir / name)
        if not rules.exists():
            rules.write_text(_template("rules.toml"), encoding="utf-8")
        path.write_text(_template("ackmail.toml"), encoding="utf-8")
    except OSError as exc:
        raise UserError(
            f"cannot write {exc.filename}: {exc.strerror}; choose a writable place "
            "with --config PATH"
        ) from None


def _write_key(path: Path) -> None:
    """A fresh random key, readable by the owner only; an existing key is never replaced."""
    import secrets

    if path.exists():
        return
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
