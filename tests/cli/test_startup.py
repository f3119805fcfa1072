"""Start-up: building the parser loads no heavy library, and commands stay independent."""

from __future__ import annotations

import json
import subprocess
import sys

import grimp

from ingest.store.migrate import PROJECT_ROOT

HEAVY = ("sqlalchemy", "alembic", "msal", "requests", "jinja2", "cryptography", "tqdm",
         "imapclient", "rules", "ingest.app", "ingest.store.models")
PROBE = """
import json, sys
from ingest.cli import build_parser
build_parser()
heavy = {heavy!r}
print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))
"""


def test_building_the_parser_loads_none_of_the_heavy_libraries() -> None:
    probe = PROBE.format(heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, check=True)
    assert json.loads(done.stdout) == []


def test_help_lists_every_command() -> None:
    done = subprocess.run([sys.executable, "-m", "ingest", "--help"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, check=True)
    for command in ("demo", "init", "db", "request", "auth", "check", "poll", "parse",
                    "requests", "acks", "messages", "stats", "rules", "dispatch", "outcomes",
                    "serve"):
        assert f"    {command} " in done.stdout


def test_no_command_module_imports_another() -> None:
    graph = grimp.build_graph("ingest", "rules")
    commands = sorted(m for m in graph.find_children("ingest.cli.commands"))
    assert len(commands) >= 14
    chains = [(a, b) for a in commands for b in commands
              if a != b and graph.chain_exists(importer=a, imported=b)]
    assert chains == []
