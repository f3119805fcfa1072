"""The child process of the fuzz runner (fuzz.py): one target under atheris.

    python -m tests.parse.fuzz_child TARGET KEPT_DIR WORK_DIR [libFuzzer arguments]

The parse and correlate hops, ``email`` and ``html`` are imported under atheris's
instrumentation so libFuzzer sees their branch coverage; nothing imports them before
that. A failing input never stops the run: it is minimised, kept once per distinct
failure (known failures of already-kept inputs are skipped), announced on a ``KEPT``
line, and fuzzing goes on. A slow input is noted for the runner to re-time without
instrumentation. Warnings are errors, as under pytest.
"""

from __future__ import annotations

import hashlib
import sys
import time
import warnings
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["ingest.parse", "ingest.correlate", "email", "html"]):
    from tests.parse.fuzz_targets import Target, targets

from tests.parse.fuzz_keep import failure_of, is_slow, keep, kept_inputs, minimise

MAX_SLOW = 50  # slow candidates noted per child; the runner re-times them


class Child:
    """Runs one target on each input; keeps failures and notes slow inputs."""

    def __init__(self, target: Target, kept: Path, work: Path) -> None:
        self.target = target
        self.kept = kept
        self.slow = work / "slow"
        known = (failure_of(target.check, path.read_bytes())
                 for path in kept_inputs(kept) if path.parent.name == target.name)
        self.seen = {signature for signature in known if signature}
        self.slow_left = MAX_SLOW

    def one_input(self, data: bytes) -> None:
        """libFuzzer's callback: never raises for a failure of the code under test."""
        subject = self.target.input_of(data)
        if subject is None:
            return
        start = time.perf_counter()
        failure = failure_of(self.target.check, subject)
        if failure is not None and failure not in self.seen:
            self.seen.add(failure)
            self._keep(subject, failure)
        elif is_slow(time.perf_counter() - start, len(subject)) and self.slow_left:
            self.slow_left -= 1
            self.slow.mkdir(parents=True, exist_ok=True)
            (self.slow / hashlib.sha1(subject).hexdigest()).write_bytes(subject)

    def _keep(self, subject: bytes, failure: str) -> None:
        smaller = minimise(subject, lambda data: failure_of(self.target.check, data) == failure)
        path = keep(smaller, self.target.name, self.kept)
        print(f"KEPT {path} ({failure}; {len(smaller):,} of {len(subject):,} bytes)", flush=True)


def main() -> None:
    """Parse the arguments, then hand over to libFuzzer (which exits the process)."""
    name, kept, work, *fuzzer_args = sys.argv[1:]
    child = Child(targets()[name], Path(kept), Path(work))
    warnings.simplefilter("error")
    atheris.Setup([sys.argv[0], *fuzzer_args], child.one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
