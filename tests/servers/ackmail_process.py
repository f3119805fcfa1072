"""``ackmail`` commands as real processes, for tests that kill, stop and restart them.

Each command runs as ``python -m ingest ...`` in its own process group (so a signal reaches
everything it started), with its stdout and stderr in one log file per process. The
``AckmailProcesses`` that started them kills every group still alive when it is closed
(the fixture does that when the test ends, pass or fail).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import count
from pathlib import Path

STOP_SECONDS = 30.0  # a SIGTERM'd poll finishes the batches in hand, logs out, and exits
RUN_SECONDS = 300.0  # the longest a foreground command (poll --once, dispatch --once) may take


@dataclass(frozen=True)
class Finished:
    """A command that ran to its end: exit status and everything it printed."""

    args: tuple[str, ...]
    code: int
    output: str

    def describe(self) -> str:
        """The command, its status and its last lines, for assertion messages."""
        return f"'ackmail {' '.join(self.args)}' exited {self.code}:\n{_tail(self.output)}"


class AckmailProcess:
    """One running ``ackmail`` command."""

    def __init__(self, args: tuple[str, ...], popen: subprocess.Popen[bytes],
                 log_path: Path) -> None:
        self.args = args
        self.popen = popen
        self.log_path = log_path

    def __repr__(self) -> str:
        return f"AckmailProcess({' '.join(self.args)!r}, pid={self.pid}, code={self.code})"

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def code(self) -> int | None:
        """The exit status, None while running (negative: ended by that signal)."""
        return self.popen.poll()

    def kill(self, signum: signal.Signals = signal.SIGKILL) -> int:
        """Send ``signum`` to the whole process group and wait for the process to end."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)
        return self.popen.wait(STOP_SECONDS)

    def stop(self) -> Finished:
        """SIGTERM, as a service manager stops it; SIGKILL if it has not ended in time."""
        try:
            code = self.kill(signal.SIGTERM)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            raise AssertionError(
                f"'ackmail {' '.join(self.args)}' did not end within {STOP_SECONDS:.0f} s of "
                f"SIGTERM; it was killed. Its last lines:\n{_tail(self.output())}") from None
        return Finished(self.args, code, self.output())

    def output(self) -> str:
        """What the process has printed so far (stdout and stderr, interleaved)."""
        return self.log_path.read_text(errors="replace")


class AckmailProcesses:
    """Starts ``ackmail`` commands with one environment; ``close()`` kills what still runs."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[AckmailProcess] = []
        self._serial = count(1)

    def start(self, *args: str, env: Mapping[str, str]) -> AckmailProcess:
        """Start ``ackmail ARGS`` in the background, in a new process group."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{next(self._serial):03d}-{'-'.join(args[:1])}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen([sys.executable, "-m", "ingest", *args],
                                     env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        process = AckmailProcess(tuple(args), popen, log_path)
        self.started.append(process)
        return process

    def run(self, *args: str, env: Mapping[str, str],
            timeout: float = RUN_SECONDS) -> Finished:
        """Run ``ackmail ARGS`` to its end (killed, and an AssertionError, after ``timeout``)."""
        process = self.start(*args, env=env)
        try:
            code = process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"'ackmail {' '.join(args)}' did not end within {timeout:.0f} "
                                 f"s; it was killed. Its last lines:\n"
                                 f"{_tail(process.output())}") from None
        return Finished(tuple(args), code, process.output())

    def logs(self) -> str:
        """Every process's output so far, each headed by its command."""
        return "\n".join(f"=== ackmail {' '.join(p.args)} (pid {p.pid}, exit {p.code})\n"
                         f"{p.output()}" for p in self.started)

    def close(self) -> None:
        """SIGKILL every process group started here that is still alive."""
        for process in self.started:
            if process.alive:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.kill()


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])
