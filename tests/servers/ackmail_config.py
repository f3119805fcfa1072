"""ackmail.toml for a test installation, as a user writes one: the secrets come from the
environment, and ``config_env`` is that environment."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tests.sources.mail import SECRET

CACHE_KEY = "f" * 32


def write_config(root: Path, service: Mapping[str, int], mailboxes: str,
                 rules: Path | None = None) -> Path:
    """``root``/ackmail.toml: [security] from the environment, [rules] when ``rules`` is
    given, [service] with its state under ``root`` and ``service``, then the [[mailbox]]
    tables as written; returns its path."""
    rules_table = f'\n[rules]\nfile = "{rules}"\n' if rules else ""
    settings = "".join(f"{key} = {value}\n" for key, value in service.items())
    config = root / "ackmail.toml"
    config.write_text(f"""[security]
token_secret = {{ env = "ACKMAIL_TOKEN_SECRET" }}
cache_key = {{ env = "ACKMAIL_CACHE_KEY" }}
{rules_table}
[service]
state_dir = "{root / 'state'}"
{settings}{mailboxes}""")
    return config


def config_env(config: Path, database_url: str) -> dict[str, str]:
    """The environment an ``ackmail`` process of that installation runs with."""
    return {"ACKMAIL_CONFIG": str(config), "ACKMAIL_DATABASE_URL": database_url,
            "ACKMAIL_TOKEN_SECRET": SECRET, "ACKMAIL_CACHE_KEY": CACHE_KEY}
