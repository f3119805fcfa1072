"""``command``: run a program (an argv list, never a shell) with the event JSON on stdin.

Exit status 0 ends it; any other status, or running past ``timeout``, is a
failure retried with backoff, reported with the last line the program wrote to
stderr. The program also gets ``ACKMAIL_EVENT`` and ``ACKMAIL_OUTCOME_ID`` (the
idempotency key) in its environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ingest.errors import PermanentError, TransientError
from rules.actions.webhook import event_body
from rules.base import ActionEnvironment, Delivery
from rules.params import Params

DEFAULT_TIMEOUT = 30.0


class CommandAction:
    """Run ``argv`` with the event on stdin."""

    name = "command"

    def __init__(self, env: ActionEnvironment) -> None:
        self.env = env

    def prepare(self, params: Params) -> dict[str, Any]:
        """Keys: argv (a list; the program must exist now), timeout (seconds)."""
        argv = params.str_list("argv")
        if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv):
            program = _program(argv[0], params.base_dir)
            if program is None:
                params.problem("argv", f"argv names {argv[0]!r}, which is not an executable "
                                       "file or a program on PATH; give its full path")
            else:
                argv = [program, *argv[1:]]
        elif argv == []:
            params.problem("argv", "argv must not be empty: give the program and its "
                                   "arguments")
        return {"argv": argv, "timeout": params.number("timeout", DEFAULT_TIMEOUT, low=0.1,
                                                        high=3600)}

    def deliver(self, delivery: Delivery) -> dict[str, Any]:
        """Run once; the exit status is kept in the outcome."""
        argv = [str(a) for a in delivery.params["argv"]]
        timeout = float(delivery.params.get("timeout", DEFAULT_TIMEOUT))
        env = {**os.environ, "ACKMAIL_EVENT": delivery.event_type,
               "ACKMAIL_OUTCOME_ID": delivery.idempotency_key}
        try:
            finished = subprocess.run(argv, input=event_body(delivery.payload), env=env,
                                      capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise TransientError(f"command {argv[0]} did not finish within {timeout:g} s; it "
                                 "was stopped and will be retried") from None
        except OSError as exc:
            raise PermanentError(f"command {argv[0]} cannot be started ({exc.strerror}); fix "
                                 "argv in the rules file") from None
        if finished.returncode != 0:
            raise TransientError(f"command {argv[0]} exited with status {finished.returncode}: "
                                 f"{_last_line(finished.stderr)}")
        return {"exit": 0}


def _program(name: str, base_dir: Path) -> str | None:
    """The absolute path of an executable, from a path (relative to the rules file) or PATH."""
    if os.sep in name:
        path = (base_dir / Path(name).expanduser()).absolute()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(name)


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:500] if lines else "(nothing on stderr)"
