"""Helpers shared by the test servers that run as a master process with children (Dovecot,
Cyrus): configuration templates, a short fast temp dir, the live members of a process group,
and waiting until loopback ports greet."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import astuple
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.servers.mail_server import Ports
from tests.servers.tls import TestPki

START_TIMEOUT = 10.0


def fast_temp_dir() -> str:
    """Memory-backed /dev/shm when there is one: creating a file there takes ~0.02 ms,
    against ~1 ms on the disk-backed /tmp of a CI VM (5,000 messages: 0.1 s vs 5 s). Its
    path is short too, which unix socket paths (< 108 bytes) need."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else tempfile.gettempdir()


def live_group_members(pgid: int) -> list[int]:
    """Pids of the processes (zombies excepted) in process group ``pgid``, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # the process ended while we looked
        if int(group) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return sorted(members)


def signal_group(pgid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def port_ready(host: str, port: int, *, greets: bool) -> bool:
    """Whether the port accepts; on a plain port also whether the greeting arrived, which
    servers send only once they can serve a login."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            return not greets or sock.recv(64).startswith((b"* OK", b"+OK"))
    except OSError:
        return False


def render(template: str, values: dict[str, str]) -> str:
    """Replace every @NAME@; an unknown NAME is a KeyError, so no placeholder survives."""
    return re.sub(r"@([A-Z_0-9]+)@", lambda m: values[m.group(1)], template)


def wait_until_serving(process: subprocess.Popen[bytes] | None, host: str, ports: Ports, *,
                       what: str, log: Callable[[], str], timeout: float) -> str | None:
    """Wait until every port accepts (the plain ones greeting); on failure the sentence
    that says why, with the server's log, for the caller to raise."""
    deadline = time.monotonic() + timeout
    waiting = list(astuple(ports))
    plain = (ports.imap, ports.pop3)
    while waiting:
        if process is None or process.poll() is not None:
            return f"{what} exited while starting; its log follows:\n{log()}"
        if time.monotonic() > deadline:
            return (f"{what} did not accept on ports {waiting} within {timeout:.0f} s; "
                    f"its log follows:\n{log()}")
        waiting = [port for port in waiting if not port_ready(host, port, greets=port in plain)]
        if waiting:
            time.sleep(0.02)
    return None


class MasterProcess:
    """The lifecycle a test server run as one master process (and its group) shares.

    A subclass names its command line (``_command``), what it is (``_what``) and its error
    type (``_error``), and ends every process of its group in ``stop()``; ``start()`` waits
    until all four ports serve (``_ready``, which a subclass may extend).
    """

    host = "127.0.0.1"
    root: Path
    ports: Ports
    pki: TestPki
    _process: subprocess.Popen[bytes] | None
    _what: str
    _error: type[Exception]

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"{type(self).__name__}({state}, {self.ports}, root={str(self.root)!r})"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _write_instance(self) -> None:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write the instance's files; its directory is removed again if that fails."""
        try:
            self._write_instance()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def stop(self) -> None:
        """Stop every process of the server."""
        raise NotImplementedError

    def start(self) -> Self:
        """Start the master in the foreground, in its own process group (its output goes to
        ``log/master.out``), and wait until it serves; stopped again if that fails."""
        log = (self.root / "log" / "master.out").open("ab")
        with log:
            self._process = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log, start_new_session=True)
        try:
            self._ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> None:
        problem = wait_until_serving(self._process, self.host, self.ports, what=self._what,
                                     log=self.log_text, timeout=START_TIMEOUT)
        if problem:
            raise self._error(problem)

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context trusting only this instance's CA."""
        return self.pki.client_context()

    def restart(self) -> None:
        """Stop and start again on the same ports, keeping all mail."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and delete the instance directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        """The master's pid (also its process group id), None while stopped."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """Whether the master process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def log_text(self) -> str:
        """The server's logs (why a login failed is said there, never on the wire)."""
        parts = [p.read_text(errors="replace") for p in sorted((self.root / "log").iterdir())]
        return "".join(parts)
