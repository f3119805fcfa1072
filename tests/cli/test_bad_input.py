"""Every command, given bad input, answers with one sentence and exit 1 or 2, never a traceback.

The commands run as a user runs them: the console script in a subprocess, from a
directory holding a fresh ``ackmail init``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ingest.cli.context import CommandContext
from ingest.cli.crash import report_crash
from ingest.cli.output import render
from ingest.config import load_settings
from ingest.errors import ConfigError

ACKMAIL = Path(sys.executable).with_name("ackmail")
UNREACHABLE_PG = "postgresql+psycopg://nobody@127.0.0.1:9/none"
HUGE = "99999999999999999999"
BOM = b"\xef\xbb\xbf"
MESSAGE = Path(__file__).parents[2] / "ingest/cli/templates/demo/01-approve-outlook.eml"
OAUTH_BOX = b"""
[[mailbox]]
name = "approvals"
protocol = "imap"
host = "127.0.0.1"
username = "approvals@example.test"
auth = "oauth2-app"

[mailbox.oauth]
"""
UNREACHABLE_AUTHORITY = b"""
[security]
cache_key = { file = ".ackmail/cache_key" }

[[mailbox]]
name = "alice"
protocol = "imap"
host = "127.0.0.1"
username = "alice@example.test"
auth = "oauth2-delegated"

[mailbox.oauth]
tenant_id = "t"
client_id = "c"
authority = "https://127.0.0.1:9"
"""

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


# (arguments, files, environment, the sentence stderr must hold)
GRAPH_BOX = (b"[[mailbox]]\nname = 'g'\nprotocol = 'graph'\nusername = 'shared@example.test'\n"
             b"auth = 'oauth2-app'\n")
SENTENCES: list[tuple[tuple[str, ...], dict[str, bytes], dict[str, str], str]] = [
    *[(("--config", "c.toml", "stats"), {"c.toml": GRAPH_BOX + b"graph_endpoint = '" + url
                                         + b"'\n"}, {},
       f"[[mailbox]] 'g' key 'graph_endpoint' must be {problem}")
      for url, problem in (
          (b"http://graph.microsoft.com", "an https:// URL, not 'http://graph.microsoft.com'"),
          (b"https://graph.microsoft.com/v1.0", "the service's root URL such as "
           "https://graph.microsoft.com (ackmail adds /v1.0 itself), not "
           "'https://graph.microsoft.com/v1.0'"))],
    (("--config", "c.toml", "stats"),
     {"c.toml": b"[[mailbox]]\nname = 'a'\nprotocol = 'imap'\nhots = '127.0.0.1'\n"}, {},
     "[[mailbox]] 'a' key 'host' is required but missing ('hots' is there: did you mean 'host'?)"),
    (("--config", "c.toml", "stats"), {"c.toml": OAUTH_BOX + b"tennant_id = 't'\n"}, {},
     "[[mailbox]] 'approvals' [mailbox.oauth] key 'tenant_id' is required but missing "
     "('tennant_id' is there: did you mean 'tenant_id'?)"),
    *[(("--config", "c.toml", "stats"),
       {"c.toml": OAUTH_BOX + b"tenant_id = 't'\nclient_id = 'c'\n"
                              b"client_secret = { env = 'ACKMAIL_TEST_SECRET' }\n"}, env,
       "[[mailbox]] 'approvals' [mailbox.oauth] key 'client_secret' reads environment variable "
       f"ACKMAIL_TEST_SECRET, which is {state}; export it")
      for env, state in (({}, "not set"), ({"ACKMAIL_TEST_SECRET": ""}, "empty"))],
    *[(command, {}, {"ACKMAIL_DATABASE_URL": ""},
       "environment variable ACKMAIL_DATABASE_URL is empty; set it to a database URL")
      for command in (("stats",), ("db", "upgrade"))],
    *[((*command, "--offset", "-5"), {}, {}, "argument --offset: -5 must be 0 or more")
      for command in (("requests", "list"), ("acks", "list"), ("messages", "list"),
                      ("outcomes", "list"))],
    *[(("--config", "c.toml", command), {"c.toml": b"[database]\nurl = '" + url + b"'\n"}, {},
       f"is a {name} database, which ackmail does not support; use SQLite")
      for command in ("stats", "init")
      for url, name in ((b"mysql://u@127.0.0.1/db", "mysql"),
                        (b"mysql+pymysql://u@127.0.0.1/db", "mysql"),
                        (b"oracle://u@127.0.0.1/db", "oracle"))],
    *[(("--config", "c.toml", *command),
       {"c.toml": b"[database]\nurl = 'sqlite:////no/such/folder/ackmail.db'\n"}, {},
       "the folder /no/such/folder of the database file /no/such/folder/ackmail.db does not "
       "exist; create it (mkdir -p /no/such/folder)")
      for command in (("stats",), ("db", "upgrade"), ("acks", "list"))],
    (("stats",), {".ackmail/cache_key": b"\xff\xfe\x00key"}, {},
     "which is not UTF-8 text; write the secret as plain UTF-8 text"),
    (("--config", "c.toml", "stats"),
     {"c.toml": b"[security]\ncache_key = { file = 'nothere' }\n"}, {},
     "which does not exist; create it or fix the path"),
    (("rules", "check"),
     {"rules.toml": b"[[rule]]\nname='r'\non=['request.approved']\n[[rule.action]]\nx=1\n"},
     {}, "the action needs type = one of webhook, email, command, log"),
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


def ackmail(work: Path, *args: str, files: dict[str, bytes] | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the console script in ``work`` after writing ``files``, without ACKMAIL_* settings."""
    for name, body in (files or {}).items():
        (work / name).write_bytes(body)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ACKMAIL_")}
    return subprocess.run([ACKMAIL, *args], cwd=work, capture_output=True, text=True,
                          timeout=60, env={**clean, **(env or {})})


@pytest.fixture
def work(initialised: Path, tmp_path: Path) -> Path:
    """A copy of the initialised directory, for one test to change."""
    copy = tmp_path / "w"
    shutil.copytree(initialised, copy)
    return copy


@pytest.mark.parametrize(("args", "files", "env"), CASES, ids=lambda value: repr(value)[:60])
def test_bad_input_is_one_sentence(
    args: tuple[str, ...], files: dict[str, bytes], env: dict[str, str], work: Path,
) -> None:
    done = ackmail(work, *args, files=files, env=env)
    assert done.returncode in (1, 2), (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    assert "internal error" not in done.stderr, done.stderr
    assert (done.stderr + done.stdout).strip(), "a refusal must say why"


@pytest.mark.parametrize(("args", "files", "env", "sentence"), SENTENCES,
                         ids=lambda value: repr(value)[:60])
def test_bad_input_says_what_is_wrong(
    args: tuple[str, ...], files: dict[str, bytes], env: dict[str, str], sentence: str,
    work: Path,
) -> None:
    done = ackmail(work, *args, files=files, env=env)
    assert done.returncode in (1, 2), (done.returncode, done.stdout, done.stderr)
    assert sentence in done.stderr
    # One sentence, not a cascade (argparse adds its usage lines above it).
    said = [line for line in done.stderr.splitlines() if line.startswith("ackmail")]
    assert len(said) == 1, done.stderr


def test_a_second_pending_request_for_a_ref_is_refused(work: Path) -> None:
    create = ("request", "create", "--kind", "approval", "--ref", "CR-7", "--responder", "a@b.test")
    assert ackmail(work, *create).returncode == 0
    again = ackmail(work, *create)
    assert again.returncode == 1
    assert again.stderr == ("ackmail: request #1 with ref CR-7 is still pending, so nothing was "
                            "registered; pass --allow-duplicate-ref to register another with "
                            "the same ref\n")
    allowed = ackmail(work, *create, "--allow-duplicate-ref")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["id"] == 2


def test_an_unknown_action_type_is_one_problem_with_a_suggestion(work: Path) -> None:
    rules = b"[[rule]]\nname='r'\non=['request.approved']\n[[rule.action]]\ntype = 'logg'\n"
    done = ackmail(work, "rules", "check", files={"rules.toml": rules})
    assert done.returncode == 1
    assert "action type 'logg' is not known (did you mean 'log'?)" in done.stderr
    assert "has no [[rule.action]]" not in done.stderr
    assert "1 problem(s)" in done.stderr


def test_a_sign_in_the_network_stops_says_to_run_it_again(work: Path) -> None:
    done = ackmail(work, "--config", "net.toml", "auth", "login", "alice",
                   files={"net.toml": UNREACHABLE_AUTHORITY})
    assert done.returncode == 1
    assert "could not be reached" in done.stderr
    assert ("nothing was signed in; check the network path to the authority, then run "
            "'ackmail auth login alice' again") in done.stderr
    assert "retries later" not in done.stderr


def test_a_config_with_a_byte_order_mark_is_read(work: Path) -> None:
    config = (work / "ackmail.toml").read_bytes()
    done = ackmail(work, "--config", "bom.toml", "stats", files={"bom.toml": BOM + config})
    assert done.returncode == 0, done.stderr
    assert "Messages per mailbox and status" in done.stdout


def test_without_a_config_file_the_defaults_are_named(tmp_path: Path) -> None:
    done = ackmail(tmp_path, "parse", str(MESSAGE))
    assert done.returncode == 0, done.stderr
    assert done.stderr == (f"ackmail: no configuration file ackmail.toml; using the defaults: "
                           f"sqlite:///{tmp_path / 'ackmail.db'}, no mailboxes, no rules file "
                           "(run 'ackmail init' to write one)\n")


def test_output_shows_no_python_none_or_true(tmp_path: Path) -> None:
    done = ackmail(tmp_path, "parse", str(MESSAGE))
    assert "(sender not checked)" in done.stdout
    assert not {"None", "True", "False"} & set(done.stdout.replace("(", " ").split())
    rows = [{"flag": True, "off": False, "gone": None}]
    assert render(rows, ("flag", "off", "gone"), "table").splitlines()[-1].split() == [
        "yes", "no", "-"]
    assert render(rows, ("flag", "off", "gone"), "csv").splitlines()[-1] == "true,false,"


def test_a_secret_file_that_may_not_be_read_says_permission(
    work: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The suite runs as root, whom no file mode stops: the refusal is simulated.
    denied = (work / ".ackmail" / "cache_key").absolute()
    read_text = Path.read_text

    def refuse(path: Path, *args: Any, **kwargs: Any) -> str:
        if path == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(ConfigError) as refused:
        load_settings(work / "ackmail.toml")
    assert str(refused.value) == (
        f"{work / 'ackmail.toml'}: [security] key 'cache_key' reads {denied}, which this user "
        "may not read; give the user running ackmail read permission (chmod 600, owned by "
        "that user)")


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
