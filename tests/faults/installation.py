"""An ackmail installation as a user sets one up: ackmail.toml, rules.toml and the environment.

The rules send every decision and every recorded response to the real webhook receiver,
one rule each, so the invariant checker can tell which rule an HTTP request came from
(by its path). Secrets reach the processes through the environment only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.auth.conftest import SHARED
from tests.servers.ackmail_config import config_env, write_config
from tests.servers.ackmail_process import AckmailProcess, AckmailProcesses, Finished
from tests.servers.dovecot import DovecotServer
from tests.servers.graph import GraphServer
from tests.servers.idp import IdentityProvider
from tests.servers.mail_server import MailServer
from tests.servers.rules_fixtures import WEBHOOK_SECRET

MAILBOX = "approvals"
PROCESSED = "ackmail/processed"
# A killed poller's mailbox lease (PostgreSQL) is taken over this soon; the default (30 s)
# would make every restart after a SIGKILL wait that long.
LEASE_SECONDS = 2
# rule name -> the events it sends to <receiver>/hooks/<rule name>
HOOKS = {"decisions": ("request.approved", "request.rejected"),
         "responses": ("response.recorded",)}


@dataclass
class Installation:
    """A configured installation; ``poll()`` and ``run()`` start ``ackmail`` with its env."""

    root: Path
    env: dict[str, str]
    processes: AckmailProcesses = field(repr=False)

    def poll(self, *args: str) -> AckmailProcess:
        """A long-running ``ackmail poll`` (with its dispatcher), in the background."""
        return self.processes.start("poll", *args, env=self.env)

    def run(self, *args: str) -> Finished:
        """``ackmail ARGS`` run to its end."""
        return self.processes.run(*args, env=self.env)


def password_mailbox(server: MailServer, port: int) -> tuple[str, dict[str, str]]:
    """bob's INBOX over IMAPS on ``port`` (the server's, or a proxy's), and its env."""
    bob = server.users.bob
    assert bob.password is not None
    return _mailbox(server, port, bob.address) + 'password = { env = "BOB_PASSWORD" }\n', \
        {"BOB_PASSWORD": bob.password.reveal()}


def app_mailbox(server: DovecotServer, port: int, idp: IdentityProvider, client_id: str,
                secret: str) -> tuple[str, dict[str, str]]:
    """The shared mailbox with an app-only token from ``idp``, used until it expires."""
    table = _mailbox(server, port, server.users.shared.address) + 'auth = "oauth2-app"\n' + \
        _oauth(idp, client_id)
    return table, {"APP_SECRET": secret}


def graph_mailbox(server: GraphServer, idp: IdentityProvider, client_id: str,
                  secret: str) -> tuple[str, dict[str, str]]:
    """The shared mailbox's Inbox through the Graph test server, with an app-only token."""
    table = f"""
[[mailbox]]
name = "{MAILBOX}"
protocol = "graph"
graph_endpoint = "{server.endpoint}"
ca_file = "{idp.ca_pem}"
username = "{SHARED}"
processed_folder = "{PROCESSED}"
poll_interval = 1
auth = "oauth2-app"
""" + _oauth(idp, client_id)
    return table, {"APP_SECRET": secret}


def _oauth(idp: IdentityProvider, client_id: str) -> str:
    return f"""
[mailbox.oauth]
tenant_id = "{idp.tenant}"
client_id = "{client_id}"
client_secret = {{ env = "APP_SECRET" }}
authority = "{idp.base_url}"
ca_file = "{idp.ca_pem}"
refresh_margin_seconds = 0
"""


def _mailbox(server: MailServer, port: int, username: str) -> str:
    return f"""
[[mailbox]]
name = "{MAILBOX}"
protocol = "imap"
host = "{server.host}"
port = {port}
security = "ssl"
ca_file = "{server.pki.ca_pem}"
username = "{username}"
processed_folder = "{PROCESSED}"
poll_interval = 1
"""


def install(root: Path, mailbox: tuple[str, dict[str, str]], database_url: str,
            receiver_url: str, processes: AckmailProcesses) -> Installation:
    """Write ackmail.toml and rules.toml under ``root``; the database is already upgraded."""
    root.mkdir(parents=True, exist_ok=True)
    table, mailbox_env = mailbox
    rules = root / "rules.toml"
    rules.write_text("".join(_hook_rule(name, events, receiver_url)
                             for name, events in HOOKS.items()))
    config = write_config(root, {"lease_seconds": LEASE_SECONDS}, table, rules)
    env = {**config_env(config, database_url), "HOOK_SECRET": WEBHOOK_SECRET, **mailbox_env}
    return Installation(root, env, processes)


def _hook_rule(name: str, events: tuple[str, ...], receiver_url: str) -> str:
    listed = ", ".join(f'"{event}"' for event in events)
    return f"""
[[rule]]
name = "{name}"
on = [{listed}]

[[rule.action]]
type = "webhook"
url = "{receiver_url}/hooks/{name}"
secret = {{ env = "HOOK_SECRET" }}
timeout = 5
"""
