"""Every command, given bad input, answers with one sentence and exit 1 or 2, never a traceback.

The commands run as a user runs them: the console script in a subprocess, from a
directory holding a fresh ``ackmail init``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.cli.context import CommandContext
from ingest.cli.crash import report_crash

ACKMAIL = Path(sys.executable).with_name("ackmail")
UNREACHABLE_PG = "postgresql+psycopg://nobody@127.0.0.1:9/none"
HUGE = "99999999999999999999"

# (arguments, files to write first {name: bytes}, extra environment)
CASES: list[tuple[tuple[str, ...], dict[str, bytes], dict[str, str]]] = [
    *[((*command, "--limit", value), {}, {})
      for command in (("requests", "list"), ("acks", "list"), ("messages", "list"))
      for value in (HUGE, "-1", "x", "")],
    *[((*command, "--offset", value), {}, {})
      for command in (("requests", "list"), ("acks", "list")) for value in ("x", "")],
    *[((*command, "--since", value), {}, {})
      for command in (("requests", "list"), ("acks", "list"), ("messages", "list"))
      for value in ("yesterday", "99999999999d", "-3d", "")],
    *[(("requests", "list", "--format", value), {}, {}) for value in ("xml", "")],
    *[(("requests", "list", "--status", value), {}, {}) for value in ("done", "")],
    *[(("request", "create", "--kind", "approval", "--ref", "CR-1", "--responder", "a@b.test",
        "--expires", value), {}, {}) for value in ("99999999d", "x", "", "3y", "-1d", "0d", "0s")],
    *[(("request", "create", "--kind", kind, "--ref", "CR-1", "--responder", "a@b.test"), {}, {})
      for kind in ("", "vote")],
    (("request", "create", "--kind", "approval", "--responder", "a@b.test"), {}, {}),
    (("request", "create", "--kind", "approval", "--ref", "CR-1"), {}, {}),
    (("db", "downgrade", "nosuchrev"), {}, {}),
    (("db",), {}, {}),
    (("db", "sideways"), {}, {}),
    (("nosuchcommand",), {}, {}),
    ((), {}, {}),
    (("--log-format", "xml", "stats"), {}, {}),
    (("--config", "missing.toml", "stats"), {}, {}),
    (("--config", ".", "stats"), {}, {}),
    (("--config", "/dev/null/x.toml", "stats"), {}, {}),
    *[(("--config", "c.toml", command), {"c.toml": body}, {})
      for command in ("stats", "rules")
      for body in (
          "[database]\nurl = 'x'\n".encode("utf-16"),
          b"\xff\xfe\x00garbage",
          b"[database\n",
          b"[database]\nurl = 5\n",
          b"[database]\nurl = 'mysql://u@127.0.0.1/db'\n",
          b"[database]\nurl = 'sqlite:////no/such/folder/ackmail.db'\n",
          b"[[mailbox]]\nname = 'a'\nprotocol = 'imap'\nhots = '127.0.0.1'\n",
          b"[[mailbox]]\nname = 'a'\nprotocol = 'carrier-pigeon'\n",
      )],
    *[(command, {}, {"ACKMAIL_DATABASE_URL": url})
      for command in (("stats",), ("requests", "list"), ("acks", "list"), ("db", "upgrade"),
                      ("db", "current"))
      for url in (UNREACHABLE_PG, "nonsense://")],
    *[(("rules", "check"), {"rules.toml": body}, {})
      for body in (b"[[rule]]\n", b"[[rule]\n", b"\xff\xfe", b"[[rule]]\nwhen = 5\n",
                   b"[[rule]]\nname='r'\n[[rule.action]]\ntype = 'logg'\n")],
    *[(("parse", name), files, {}) for name, files in (
        ("missing.eml", {}), (".", {}))],
    (("rules", "test"), {}, {}),
    (("rules", "test", "missing.eml"), {}, {}),
    (("outcomes", "list", "--limit", HUGE), {}, {}),
    (("check", "nosuchmailbox"), {}, {}),
    (("poll", "--mailbox", "nosuchmailbox", "--once"), {}, {}),
]


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory after ``ackmail init``: config, secrets, rules file, SQLite database."""
    base = tmp_path_factory.mktemp("init")
    done = subprocess.run([ACKMAIL, "init"], cwd=base, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return base


def test_the_table_is_long_enough() -> None:
    assert len(CASES) >= 80


@pytest.mark.parametrize(("args", "files", "env"), CASES, ids=lambda value: repr(value)[:60])
def test_bad_input_is_one_sentence(
    args: tuple[str, ...], files: dict[str, bytes], env: dict[str, str], initialised: Path,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = tmp_path / "w"
    shutil.copytree(initialised, work)
    for name, body in files.items():
        (work / name).write_bytes(body)
    for name in ("ACKMAIL_CONFIG", "ACKMAIL_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    done = subprocess.run([ACKMAIL, *args], cwd=work, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode in (1, 2), (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    assert "internal error" not in done.stderr, done.stderr
    assert (done.stderr + done.stdout).strip(), "a refusal must say why"


def test_a_closed_pipe_ends_quietly(initialised: Path) -> None:
    with subprocess.Popen([ACKMAIL, "requests", "list"], cwd=initialised,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as listing:
        assert listing.stdout is not None and listing.stderr is not None
        listing.stdout.close()  # before the command writes: its first write meets a closed pipe
        assert listing.wait(timeout=60) == 1
        assert listing.stderr.read() == b""


def test_a_crash_is_one_line_and_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # No command is known to crash any more; a handler that raises stands in for a future bug.
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(config=None)
    try:
        raise RuntimeError("a bug")
    except RuntimeError as exc:
        assert report_crash(CommandContext(args), exc) == 1
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "Traceback" not in message
    (report,) = (tmp_path / ".ackmail" / "crash").iterdir()
    assert str(report.relative_to(tmp_path)) in message
    assert "RuntimeError: a bug" in report.read_text()
