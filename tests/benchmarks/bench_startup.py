"""How long ``ackmail`` takes to start, against the bare interpreter, in one run.

    .venv/bin/python -m tests.benchmarks.bench_startup [--runs 9]

Times, as fresh processes: ``python -c pass``, ``ackmail --help``, ``ackmail acks
list`` on a SQLite database of 10,000 responses (made here, at the migrations'
head), and ``ackmail parse`` of one message. Prints the median of ``--runs`` runs
of each and its ratio to the bare interpreter. The goals (issue #16): ``--help``
within 8x and ``acks list`` within 15x.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ingest.store.db import make_engine
from ingest.store.migrate import upgrade
from ingest.store.models import Message, MessageStatus, Request, RequestKind, Response
from ingest.timeutil import utcnow

ROWS = 10_000
MESSAGE = Path(__file__).parents[2] / "ingest/cli/templates/demo/01-approve-outlook.eml"
GOALS = {"ackmail --help": 8.0, "ackmail acks list": 15.0}


def fill(url: str) -> None:
    """A database at head with ROWS requests, each answered by one recorded response."""
    engine = make_engine(url)
    upgrade(engine)
    now = utcnow()
    with Session(engine) as session:
        session.execute(insert(Request), [
            {"id": n, "kind": RequestKind.APPROVAL, "ref": f"CR-{n}", "subject": f"Change {n}",
             "expires_at": now + timedelta(days=3)} for n in range(1, ROWS + 1)])
        session.execute(insert(Message), [
            {"id": n, "mailbox": "approvals", "source_key": f"imap:INBOX:1:{n}",
             "content_hash": f"{n:064x}", "status": MessageStatus.PROCESSED, "request_id": n,
             "sender": f"user{n % 500}@example.test", "received_at": now - timedelta(minutes=n)}
            for n in range(1, ROWS + 1)])
        session.execute(insert(Response), [
            {"request_id": n, "message_id": n, "mailbox": "approvals",
             "address": f"user{n % 500}@example.test", "intent": "approve",
             "reply_text": "Approved.", "received_at": now - timedelta(minutes=n)}
            for n in range(1, ROWS + 1)])
        session.commit()
    engine.dispose()


def median_seconds(command: list[str], runs: int, cwd: Path) -> float:
    """The median wall time of ``runs`` fresh processes; a failing command stops the run."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=environment())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def environment() -> dict[str, str]:
    """This environment without an ACKMAIL_CONFIG that would point ackmail elsewhere."""
    return {name: value for name, value in os.environ.items() if name != "ACKMAIL_CONFIG"}


def ackmail_command() -> list[str]:
    """The console script beside this interpreter, as a user runs it."""
    script = shutil.which("ackmail", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "ingest"]


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=9)
    runs = options.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="ackmail-bench-") as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'ackmail.db'}"
        fill(url)
        config = work / "ackmail.toml"
        config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
        ackmail = ackmail_command()
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "ackmail --help": [*ackmail, "--help"],
            "ackmail acks list": [*ackmail, "--config", str(config), "acks", "list"],
            "ackmail parse one.eml": [*ackmail, "parse", str(MESSAGE)],
        }
        medians = {name: median_seconds(command, runs, work) for name, command in commands.items()}
    bare = medians["python -c pass"]
    print(f"start-up, median of {runs} runs ({ROWS:,} responses in SQLite for acks list)")
    for name, seconds in medians.items():
        goal = f"  (goal: within {GOALS[name]:.0f}x)" if name in GOALS else ""
        print(f"  {name:<24} {seconds * 1000:7.1f} ms  {seconds / bare:5.1f}x{goal}")


if __name__ == "__main__":
    main()
