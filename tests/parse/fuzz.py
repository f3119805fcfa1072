"""Coverage-guided fuzzing of the parser with atheris (libFuzzer), keeping what it finds.

    .venv/bin/python -m tests.parse.fuzz --seconds 600 [--target NAME ...]

Each target (fuzz_targets.py) runs in its own child process (fuzz_child.py), with
the parse and correlate hops and the standard ``email`` and ``html`` packages
instrumented for coverage, seeded from tests/corpus and the target's kept inputs (the
composing target from a few random buffers). The time share of each target is equal.
An input that breaks an invariant is minimised (when that is cheap) and
written to tests/parse/fuzz_corpus/<target>/<sha1>, one per distinct failure, and
fuzzing goes on; the regression tests replay it from then on. An input whose parse
is slow (over a second, or ten times the parser's usual time a byte: see
``fuzz_keep.is_slow``) is re-timed without instrumentation and kept when still slow.
A hang (libFuzzer's -timeout) ends the child; it is kept and the child restarted.
The growing coverage corpus lives in tests/.run/fuzz/ (not committed).

``--runs N --seed S`` makes a short deterministic pass: CI runs one (test_fuzz.py).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.parse.fuzz_keep import KEPT, SEEDS, is_slow, keep
from tests.parse.fuzz_targets import targets

HANG_SECONDS = 20  # libFuzzer's -timeout: an input running this long ends the child
MAX_SLOW_PER_RUN = 10
WORK = Path(__file__).resolve().parents[1] / ".run" / "fuzz"
# libFuzzer's own "slow-unit-" files are not kept: the time of a unit includes minimising.
_ARTIFACTS = ("crash-", "timeout-", "oom-")
_STATS = re.compile(rb"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)")
_MAX_LEN = {"message": 16_384, "text": 8_192, "compose": 4_096}


@dataclass
class Outcome:
    """What fuzzing one target did: executions, coverage reached, inputs kept."""

    target: str
    runs: int = 0
    coverage: int = 0
    features: int = 0
    corpus: int = 0
    kept: int = 0
    broken: bool = False  # the child ended without fuzzing (a harness or set-up fault)

    def line(self) -> str:
        return (f"{self.target}: {self.runs:,} executions, coverage {self.coverage:,} edges "
                f"({self.features:,} features), corpus {self.corpus:,}, kept {self.kept}")


def main(argv: list[str] | None = None) -> int:
    """Fuzz the chosen targets; exit status 1 when any input was kept."""
    args = _arguments(argv)
    if importlib.util.find_spec("atheris") is None:
        print("atheris is not installed; install the test extra: "
              ".venv/bin/pip install -e '.[test]'", file=sys.stderr)
        return 2
    names = args.target or sorted(targets())
    outcomes = []
    for name in names:
        seconds = args.seconds / len(names) if args.seconds else None
        outcome = _fuzz(name, seconds, args)
        print(outcome.line(), flush=True)
        outcomes.append(outcome)
    return 1 if any(outcome.kept or outcome.broken for outcome in outcomes) else 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.parse.fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    bound = parser.add_mutually_exclusive_group(required=True)
    bound.add_argument("--seconds", type=float, help="total time, shared by the targets")
    bound.add_argument("--runs", type=int, help="executions per target (deterministic)")
    parser.add_argument("--target", action="append", choices=sorted(targets()),
                        help="a target (repeatable; default: all)")
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer seed (0: random)")
    parser.add_argument("--kept", type=Path, default=KEPT, help="where found inputs go")
    parser.add_argument("--work", type=Path, default=WORK, help="coverage corpus and logs")
    parser.add_argument("--no-slow", action="store_true", help="do not keep slow inputs")
    return parser.parse_args(argv)


def _fuzz(name: str, seconds: float | None, args: argparse.Namespace) -> Outcome:
    """Run the child for ``name`` until the time or runs are spent, restarting after hangs."""
    outcome = Outcome(name)
    work = args.work / name
    deadline = time.monotonic() + (seconds or 0)
    while True:
        left = deadline - time.monotonic()
        bound = f"-runs={args.runs}" if args.runs else f"-max_total_time={max(int(left), 1)}"
        result = _run_child(name, work, bound, args)
        _read_stats(work / "log", outcome)
        artifacts = _keep_artifacts(name, work, args.kept)
        outcome.kept += artifacts + _keep_slow(name, work, args.kept, keep_any=not args.no_slow)
        if result != 0 and not artifacts:
            outcome.broken = True
            tail = (work / "log").read_bytes()[-3000:].decode(errors="replace")
            print(f"{name}: the fuzzer ended with status {result}:\n{tail}", flush=True)
        if result == 0 or outcome.broken or args.runs or deadline - time.monotonic() < 5:
            return outcome


def _run_child(name: str, work: Path, bound: str, args: argparse.Namespace) -> int:
    for folder in (work / "corpus", work / "artifacts", work / "slow", args.kept / name):
        folder.mkdir(parents=True, exist_ok=True)
    # The composing target's input is hypothesis's choices, not a message: kept messages
    # and mail make poor seeds for it, a few random buffers (made once) serve better.
    seeds = [_random_buffers(work / "start")] if name == "compose" else [args.kept / name, SEEDS]
    command = [sys.executable, "-m", "tests.parse.fuzz_child", name, str(args.kept), str(work),
               str(work / "corpus"), *map(str, seeds), bound,
               f"-seed={args.seed}", f"-timeout={HANG_SECONDS}", "-rss_limit_mb=4096",
               f"-max_len={_MAX_LEN.get(name, 8_192)}", "-print_final_stats=1",
               f"-artifact_prefix={work / 'artifacts'}/"]
    with (work / "log").open("wb") as log:
        return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False,
                              cwd=Path(__file__).resolve().parents[2]).returncode


def _random_buffers(folder: Path, count: int = 16, size: int = 2_000) -> Path:
    if not folder.exists():
        folder.mkdir(parents=True)
        chance = random.Random(0)
        for number in range(count):
            (folder / str(number)).write_bytes(chance.randbytes(size))
    return folder


def _read_stats(log: Path, outcome: Outcome) -> None:
    """Add the child's last libFuzzer status line to ``outcome``; echo what it kept."""
    text = log.read_bytes()
    for line in text.splitlines():
        if line.startswith(b"KEPT "):
            print(line.decode(errors="replace"), flush=True)
            outcome.kept += 1
    found = _STATS.findall(text)
    if found:
        runs, coverage, features, corpus = map(int, found[-1])
        outcome.runs += runs
        outcome.coverage, outcome.features = max(outcome.coverage, coverage), features
        outcome.corpus = corpus


def _keep_artifacts(name: str, work: Path, kept: Path) -> int:
    """Keep what libFuzzer itself caught (a hang, a crash past the child's handler)."""
    count = 0
    target = targets()[name]
    for path in sorted((work / "artifacts").iterdir()):
        if path.name.startswith(_ARTIFACTS):
            built = target.build(path.read_bytes()) if target.build else path.read_bytes()
            if built is not None:
                print(f"KEPT {keep(built, name, kept)} ({path.name.split('-')[0]})", flush=True)
                count += 1
        path.unlink()
    return count


def _keep_slow(name: str, work: Path, kept: Path, *, keep_any: bool) -> int:
    """Re-time the slow candidates without instrumentation; keep those still slow."""
    count = 0
    candidates = sorted((work / "slow").iterdir())
    for path in candidates[:MAX_SLOW_PER_RUN] if keep_any else []:
        data = path.read_bytes()
        seconds = min(_timed(targets()[name].product, data) for _ in range(2))
        if is_slow(seconds, len(data)):
            print(f"KEPT {keep(data, name, kept)} (slow: {seconds:.2f} s)", flush=True)
            count += 1
    for path in candidates:
        path.unlink()
    return count


def _timed(product: Callable[[bytes], object], data: bytes) -> float:
    start = time.perf_counter()
    with contextlib.suppress(Exception):  # a slow input that also fails is kept already
        product(data)
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
