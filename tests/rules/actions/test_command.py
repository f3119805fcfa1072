"""The command action: argv without a shell, the event on stdin, failures explained."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import PermanentError, TransientError
from rules.actions.command import CommandAction
from rules.base import ActionEnvironment, Delivery
from rules.params import Params

PAYLOAD: dict[str, Any] = {"event": "request.rejected", "request": {"ref": "CR-1; rm -rf /"}}


def _delivery(argv: list[str], timeout: float = 10.0) -> Delivery:
    return Delivery(outcome_id=7, event_id=3, event_type="request.rejected", rule="run",
                    payload=PAYLOAD, params={"argv": argv, "timeout": timeout})


@pytest.fixture
def action() -> CommandAction:
    return CommandAction(ActionEnvironment())


def _script(tmp_path: Path, body: str) -> str:
    script = tmp_path / "hook.py"
    script.write_text(body)
    return str(script)


def test_the_event_arrives_on_stdin_with_the_outcome_in_the_environment(
    action: CommandAction, tmp_path: Path
) -> None:
    out = tmp_path / "seen.json"
    script = _script(tmp_path, "import json, os, sys\n"
                     f"json.dump({{'stdin': json.load(sys.stdin), 'argv': sys.argv[1:],"
                     f" 'outcome': os.environ['ACKMAIL_OUTCOME_ID'],"
                     f" 'event': os.environ['ACKMAIL_EVENT']}}, open({str(out)!r}, 'w'))\n")

    result = action.deliver(_delivery([sys.executable, script, "$request.ref", "a b"]))

    seen = json.loads(out.read_text())
    assert result == {"exit": 0}
    assert seen == {"stdin": PAYLOAD, "argv": ["$request.ref", "a b"], "outcome": "7",
                    "event": "request.rejected"}


def test_a_non_zero_exit_is_retried_with_the_last_stderr_line(
    action: CommandAction, tmp_path: Path
) -> None:
    script = _script(tmp_path, "import sys\nprint('starting', file=sys.stderr)\n"
                     "print('ticket system said no', file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(TransientError, match=r"exited with status 3: ticket system said no$"):
        action.deliver(_delivery([sys.executable, script]))


def test_a_command_past_its_timeout_is_stopped(action: CommandAction, tmp_path: Path) -> None:
    script = _script(tmp_path, "import time\ntime.sleep(30)\n")
    with pytest.raises(TransientError, match=r"did not finish within 0\.5 s"):
        action.deliver(_delivery([sys.executable, script], timeout=0.5))


def test_a_program_that_cannot_start_is_permanent(action: CommandAction, tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="cannot be started"):
        action.deliver(_delivery([str(tmp_path / "missing")]))


def test_prepare_resolves_the_program(action: CommandAction, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    program = tmp_path / "bin" / "notify"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)

    def prepared(argv: Any) -> tuple[dict[str, Any], list[str]]:
        params = Params({"argv": argv}, fields=frozenset(), base_dir=tmp_path)
        result = action.prepare(params)
        return result, [message for _, message in params.problems]

    assert prepared(["bin/notify", "--x"])[0]["argv"] == [str(program), "--x"]
    assert prepared(["sh"])[0]["argv"][0].endswith("/sh")
    assert "not an executable file" in prepared(["bin/missing"])[1][0]
    assert "must not be empty" in prepared([])[1][0]
