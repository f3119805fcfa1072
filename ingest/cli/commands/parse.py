"""``ackmail parse FILE.eml ...``: what ackmail makes of each message, without recording it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.cli.context import CommandContext
from ingest.errors import AckmailError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ingest.parse.message import ParseOptions
    from ingest.pipeline import PipelineConfig


# The text output's words for sender_verified (JSON keeps true/false/null).
VERIFIED = {True: "sender verified", False: "sender NOT verified", None: "sender not checked"}
# What an intent becomes only once the request it answers is known (decide.answered_intent).
PER_KIND = {"affirm": "affirm (approves an approval request, acknowledges an alert)"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("parse", help="show what ackmail makes of .eml files (offline)")
    parser.add_argument("files", nargs="+", metavar="FILE", help="message files; - reads stdin")
    parser.add_argument("--json", action="store_true", help="one JSON object per file (JSON Lines)")
    parser.set_defaults(handler=run_parse)


def run_parse(ctx: CommandContext) -> int:
    from ingest.pipeline import parse_options

    options = parse_options(ctx.settings)
    pipeline, session = _database(ctx)
    failures = 0
    try:
        for name in ctx.args.files:
            result = describe(name, options, pipeline, session)
            failures += bool(result.pop("unreadable", False))
            print(json.dumps(result, ensure_ascii=False) if ctx.args.json else _as_text(result))
    finally:
        if session is not None:
            session.close()
    return 1 if failures else 0


def _database(ctx: CommandContext) -> tuple[PipelineConfig | None, Session | None]:
    """A session to resolve tokens with, when a database is configured and ready; else none."""
    from sqlalchemy.orm import Session

    from ingest.pipeline import PipelineConfig

    if ctx.settings.security.token_secret is None:
        return None, None
    try:
        return PipelineConfig.from_settings(ctx.settings), Session(ctx.store())
    except AckmailError as exc:
        if ctx.config_path.exists():
            print(f"ackmail: request_id not resolved: {exc}", file=sys.stderr)
        return None, None


def _read(name: str) -> bytes:
    return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()


def describe(
    name: str, options: ParseOptions, pipeline: PipelineConfig | None, session: Session | None
) -> dict[str, Any]:
    """The SPEC.md JSON object for one file (``error`` when it cannot be read or parsed)."""
    from ingest.correlate import correlate
    from ingest.parse.message import parse_message

    try:
        raw = _read(name)
    except OSError as exc:
        return {"file": name, "error": f"cannot read {name}: {exc.strerror}", "unreadable": True}
    parsed = parse_message(raw, options)
    if parsed.problem:
        return {"file": name, "error": parsed.problem}
    candidates = parsed.tokens
    result: dict[str, Any] = {
        "file": name,
        "kind": parsed.kind.value,
        "intent": parsed.intent.value,
        "reply_text": parsed.reply_text,
        "token": candidates[0].token if candidates else None,
        "request_id": None,
        "sender": parsed.sender.address,
        "sender_verified": parsed.sender.verified,
        "reasons": list(parsed.evidence),
    }
    if pipeline is not None and session is not None:
        [found] = correlate(session, [parsed], secret=pipeline.token_secret)
        result["request_id"] = found.request.id if found.request else None
        result["token"] = found.token or result["token"]
        result["reasons"] += list(found.reasons)
    return result


def _as_text(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"{result['file']}: {result['error']}"
    lines = [
        f"{result['file']}: {result['kind']}, "
        f"intent {PER_KIND.get(result['intent'], result['intent'])}, "
        f"from {result['sender']} ({VERIFIED[result['sender_verified']]})",
        f"  token: {result['token'] or '-'}  request: {result['request_id'] or '-'}",
        f"  reply text: {result['reply_text']!r}",
    ]
    lines += [f"  - {reason}" for reason in result["reasons"]]
    return "\n".join(lines)
