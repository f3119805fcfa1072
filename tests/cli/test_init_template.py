"""The ``ackmail.toml`` that ``ackmail init`` writes: loads as is, and every commented example
in it is a valid setting once uncommented (so a user who edits one is not told it is wrong)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.config import load_settings
from ingest.parse.base import ParseLimits

TEMPLATE = Path(__file__).parents[2] / "ingest" / "cli" / "templates" / "ackmail.toml"
# A commented TOML line: "# [table]", "# [[mailbox]]" or "# key = value" (prose does not match).
EXAMPLE_LINE = re.compile(r"^# (?=\[|[a-z_]+ = )")


def test_the_template_loads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "ackmail.toml"
    path.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    for key in ("token_secret", "cache_key"):
        (tmp_path / ".ackmail").mkdir(exist_ok=True)
        (tmp_path / ".ackmail" / key).write_text("k" * 32 + "\n")

    settings = load_settings(path)

    assert settings.mailboxes == ()
    assert settings.limits == ParseLimits()


def test_every_commented_example_is_valid_and_states_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    uncommented = "\n".join(EXAMPLE_LINE.sub("", line) for line in text.splitlines())
    path = tmp_path / "ackmail.toml"
    path.write_text(uncommented, encoding="utf-8")
    (tmp_path / ".ackmail").mkdir()
    for key in ("token_secret", "cache_key"):
        (tmp_path / ".ackmail" / key).write_text("k" * 32 + "\n")
    monkeypatch.setenv("ACKMAIL_APPROVALS_SECRET", "s")
    monkeypatch.setenv("ACKMAIL_SERVE_TOKEN", "t")

    settings = load_settings(path)

    kinds = {box.name: (box.protocol, box.auth) for box in settings.mailboxes}
    assert kinds == {"approvals": ("imap", "oauth2-app"),
                     "shared-approvals": ("imap", "oauth2-delegated"),
                     "graph-approvals": ("graph", "oauth2-app"),
                     "local": ("maildir", "basic")}, kinds
    graph = settings.mailbox("graph-approvals")
    assert (graph.graph_endpoint, graph.poll_interval_seconds) == (
        "https://graph.microsoft.com", 15)  # the values shown are the defaults
    delegated = settings.mailbox("shared-approvals")
    assert delegated.oauth is not None and delegated.oauth.client_secret is None
    assert (settings.serve.host, settings.serve.port) == ("127.0.0.1", 8025)
    assert settings.serve.token is not None
    assert settings.limits == ParseLimits()  # the values shown are the defaults
    assert (settings.keep_raw, settings.lease_seconds) == ("30d", 30)
    assert settings.state_dir == (tmp_path / ".ackmail").absolute()
    assert settings.smtp is not None and settings.smtp.host == "smtp.office365.com"
