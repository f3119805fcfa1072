"""The fuzz harness in the normal test run: every kept input replayed, and a short pass.

A kept input (tests/parse/fuzz_corpus/<target>/<sha1>) once broke an invariant of its
target or was slow; it must now pass its target's check. The short pass runs the real
coverage-guided fuzzer (tests/parse/fuzz.py) for a fixed number of executions with a
fixed seed, so it repeats exactly; the long run is ``python -m tests.parse.fuzz
--seconds 600``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.parse.fuzz_keep import kept_inputs
from tests.parse.fuzz_targets import targets

ROOT = Path(__file__).resolve().parents[2]
KEPT_INPUTS = kept_inputs()
TARGETS = targets()
# Executions per target in the short pass (the seed inputs first): ~20 s in all.
SHORT_RUNS = 300


def test_kept_inputs_exist_and_name_known_targets() -> None:
    assert KEPT_INPUTS
    assert {path.parent.name for path in KEPT_INPUTS} <= set(TARGETS)


@pytest.mark.parametrize("path", KEPT_INPUTS,
                         ids=lambda path: f"{path.parent.name}-{path.name[:10]}")
def test_kept_input_holds_its_invariants(path: Path) -> None:
    TARGETS[path.parent.name].check(path.read_bytes())


def test_short_fuzz_pass_finds_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.parse.fuzz", "--runs", str(SHORT_RUNS), "--seed", "1",
         "--no-slow", "--kept", str(tmp_path / "kept"), "--work", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    found = [f"{path}: {path.read_bytes()[:300]!r}" for path in kept_inputs(tmp_path / "kept")]
    assert (result.returncode, found) == (0, []), result.stdout + result.stderr
    executions = {name: int(runs.replace(",", "")) for name, runs in
                  re.findall(r"^(\w+): ([\d,]+) executions", result.stdout, re.MULTILINE)}
    assert executions.keys() == TARGETS.keys() and min(executions.values()) >= SHORT_RUNS
