"""The kept corpus: inputs that once broke a fuzz target, replayed as regression tests.

Each lives at ``tests/parse/fuzz_corpus/<target>/<sha1 of the input>`` and holds what
the target's check takes (for ``compose``, the built message, not the fuzzer's
bytes), so any file can be replayed or read on its own. Inputs stay after the fix.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from tests.parse.fuzz_targets import InvariantBroken

KEPT = Path(__file__).with_name("fuzz_corpus")
SEEDS = Path(__file__).resolve().parents[1] / "corpus" / "messages"
SLOW_SECONDS = 1.0
# The parser reads real mail at ~0.5 us a byte; ten times that on a sizeable input means
# work that grows faster than the input, which at the 25 MB limit is minutes.
SLOW_SECONDS_PER_BYTE = 4e-6
SLOW_FLOOR_SECONDS = 0.1


def is_slow(seconds: float, size: int) -> bool:
    """Whether taking ``seconds`` over ``size`` bytes is slow enough to keep the input."""
    return seconds > SLOW_SECONDS or (
        seconds > SLOW_FLOOR_SECONDS and seconds > size * SLOW_SECONDS_PER_BYTE)


def kept_inputs(root: Path = KEPT) -> list[Path]:
    """Every kept input, by target then name."""
    return sorted(path for path in root.glob("*/*") if path.is_file())


def keep(data: bytes, target: str, root: Path = KEPT) -> Path:
    """Write ``data`` as a kept input of ``target`` (once: the name is its SHA-1)."""
    path = root / target / hashlib.sha1(data).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    return path


def signature(error: BaseException) -> str:
    """What makes two failures the same bug: the invariant, or where in ingest/ it raised."""
    if isinstance(error, InvariantBroken):
        return error.invariant
    frames = traceback.extract_tb(error.__traceback__)
    own = [frame for frame in frames if "/ingest/" in frame.filename] or frames
    where = f" at {Path(own[-1].filename).name}:{own[-1].lineno}" if own else ""
    return f"{type(error).__name__}{where}"


def failure_of(check: Callable[[bytes], object], data: bytes) -> str | None:
    """The signature of the failure ``check`` meets on ``data``, or None when it passes."""
    try:
        check(data)
    except Exception as error:
        return signature(error)
    return None


def minimise(data: bytes, still_fails: Callable[[bytes], bool], *, tries: int = 500,
             seconds: float = 20.0) -> bytes:
    """A smaller input that still fails, within a budget (so only when it is cheap).

    Drops runs of lines, halving the run length, then runs of bytes the same way.
    """
    deadline = time.monotonic() + seconds
    best = data
    for separator in (b"\n", b""):
        pieces = _pieces(best, separator)
        run = max(len(pieces) // 2, 1)
        while run >= 1 and tries > 0 and time.monotonic() < deadline:
            start = 0
            while start < len(pieces) and tries > 0 and time.monotonic() < deadline:
                candidate = pieces[:start] + pieces[start + run:]
                tries -= 1
                if candidate and still_fails(_join(candidate, separator)):
                    pieces = candidate
                else:
                    start += run
            run //= 2
        best = _join(pieces, separator)
    return best


def _pieces(data: bytes, separator: bytes) -> list[bytes]:
    return data.split(separator) if separator else [bytes([byte]) for byte in data]


def _join(pieces: list[bytes], separator: bytes) -> bytes:
    return separator.join(pieces)
