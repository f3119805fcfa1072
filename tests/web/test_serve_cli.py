"""``ackmail serve`` as a user starts it: a real process, stopped with SIGTERM."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from ingest.cli import main
from ingest.store.db import make_engine
from ingest.store.migrate import upgrade

LISTENING = re.compile(r"ackmail serve: listening on (http://127\.0\.0\.1:\d+)/")


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    """An upgraded database and a config file pointing at it (no mailboxes)."""
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    path = tmp_path / "ackmail.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return path


def first_line(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "ackmail serve printed nothing"
    return process.stdout.readline()


def test_serve_answers_until_sigterm(config: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACKMAIL_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest", "--config", str(config), "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = first_line(process)
        match = LISTENING.search(line)
        assert match, line
        with urllib.request.urlopen(f"{match[1]}/healthz", timeout=10) as answer:
            assert answer.status == 200
        with urllib.request.urlopen(f"{match[1]}/requests", timeout=10) as answer:
            assert answer.status == 200 and b"No request matches." in answer.read()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_serve_refuses_a_non_loopback_host_without_a_token(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "serve", "--host", "127.0.0.2", "--port", "0"]) == 1
    error = capsys.readouterr().err
    assert "'127.0.0.2' (not loopback) needs [serve] token" in error
    assert "Traceback" not in error


def test_serve_says_when_the_port_is_taken(config: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--config", str(config), "serve", "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_serve_rejects_a_bad_port(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(config), "serve", "--port", "70000"])
    assert exit_info.value.code == 2
    assert "'70000' is not a port number" in capsys.readouterr().err
