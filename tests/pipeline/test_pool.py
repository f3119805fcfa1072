"""Preparing a backlog in worker processes gives what preparing in-process gives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.parse.message import ParseOptions
from ingest.pipeline.base import PipelineConfig
from ingest.pipeline.pool import MIN_POOLED, InProcessPreparer, PreparePool
from tests.sources.mail import reply, unrelated

CONFIG = PipelineConfig(ParseOptions(reply_address="approvals@example.test"), "pool-test-secret")
BATCH = [reply(f"TKN{n % 10}-ABCD") if n % 3 else unrelated() for n in range(MIN_POOLED + 8)]


@pytest.fixture(scope="module")
def pool() -> Iterator[PreparePool]:
    with PreparePool(CONFIG, 2) as started:
        yield started


WAIT = 10.0  # seconds


def test_a_pool_prepares_a_batch_in_order_as_in_process(pool: PreparePool) -> None:
    prepared = pool.prepare(BATCH)
    assert prepared == InProcessPreparer(CONFIG).prepare(BATCH)
    assert sum(bool(each.parsed.tokens) for each in prepared) == sum(bool(n % 3) for n in
                                                                 range(len(BATCH)))
    assert len({each.digest for each in prepared}) == len(BATCH)


def test_preparing_begun_with_start_is_collected_later(pool: PreparePool) -> None:
    first, second = pool.start(BATCH), pool.start(BATCH[:3])
    assert [p.parsed.subject for p in second()] == [p.parsed.subject for p in first()[:3]]


def test_a_parsing_process_that_dies_costs_no_message(
        pool: PreparePool, caplog: pytest.LogCaptureFixture) -> None:
    pool.prepare(BATCH)  # the processes are running
    assert pool._executor is not None
    executor = pool._executor
    victim, process = next(iter(executor._processes.items()))  # a real process, really killed
    os.kill(victim, signal.SIGKILL)
    process.join(WAIT)
    # The executor notices the death on its own thread; on a loaded machine the next batch
    # could otherwise finish on the surviving process before it has.
    deadline = time.monotonic() + WAIT
    while not executor._broken and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [p.parsed.message_id for p in pool.prepare(BATCH)] == [
        p.parsed.message_id for p in InProcessPreparer(CONFIG).prepare(BATCH)]
    assert "a parsing process ended unexpectedly" in caplog.text
    assert len(pool.prepare(BATCH)) == len(BATCH)  # started afresh


HOLDER = """
import sys
from ingest.parse.message import ParseOptions
from ingest.pipeline.base import PipelineConfig
from ingest.pipeline.pool import PreparePool
pool = PreparePool(PipelineConfig(ParseOptions(), "secret"), 2)
pool.prepare([b"Subject: x\\r\\n\\r\\nhi\\r\\n"] * 40)
print(*pool._executor._processes, flush=True)
sys.stdin.read()  # hold the pool until killed
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_parsing_processes_leave_when_their_poller_is_killed() -> None:
    with subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None
            children = [int(pid) for pid in holder.stdout.readline().split()]
            assert len(children) == 2 and all(_alive(pid) for pid in children)
        finally:
            holder.kill()  # SIGKILL: the pool gets no chance to stop its processes
    deadline = time.monotonic() + 30  # the machine may be loaded: the exit is what counts
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in children), "parse processes outlived the poller"
