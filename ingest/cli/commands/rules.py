"""``ackmail rules check [FILE]`` and ``ackmail rules test FILE.eml``.

``check`` validates the rules file and names file:LINE for every problem.
``test`` runs a message through the real parse and correlate hops inside a
read-only session, works out the events ingest would write for it, and shows
which rules would fire on each — and why every other rule would not. Nothing
is recorded, sent or delivered.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ingest.cli.context import CommandContext
from ingest.correlate import correlate
from ingest.decide import Vote, decide
from ingest.errors import ConfigError, UserError
from ingest.parse.base import MessageKind, ParsedMessage
from ingest.parse.message import parse_message, read_intent
from ingest.pipeline import PipelineConfig
from ingest.pipeline.handle import IGNORED_KINDS
from ingest.record import add_event
from ingest.store.db import read_session
from ingest.store.models import Message, MessageStatus, Request, Response
from ingest.timeutil import isoformat_z, utcnow
from rules.actions.registry import ActionRegistry, build_registry
from rules.base import ActionEnvironment, RulesError
from rules.engine import evaluate
from rules.loader import RuleSet, load_rules

DRY_RUN_MAILBOX = "(rules test)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("rules", help="validate the rules file, or dry-run a message")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate the rules file (every problem, file:line)")
    check.add_argument("file", nargs="?", type=Path, help="rules file (default: [rules] file)")
    check.set_defaults(handler=run_check)
    test = actions.add_parser("test", help="which rules would fire on a message (records nothing)")
    test.add_argument("message", metavar="FILE.eml", help="the message; - reads stdin")
    test.add_argument("--rules", type=Path, metavar="FILE", help="rules file to use instead")
    test.set_defaults(handler=run_test)


def rules_path(ctx: CommandContext, given: Path | None = None) -> Path:
    """``given``, else ``[rules] file``, else a ConfigError saying how to set one."""
    path = given or ctx.settings.rules_file
    if path is None:
        raise ConfigError(
            f"{ctx.settings.path}: [rules] file is not set; add [rules] file = \"rules.toml\" "
            "(see ingest/cli/templates/rules.toml for an example) or name the file"
        )
    return path


def load_configured_rules(
    ctx: CommandContext, given: Path | None = None, engine: Engine | None = None
) -> tuple[RuleSet, ActionRegistry]:
    """The validated rules and the registry their actions run with (``engine`` for delivery)."""
    registry = build_registry(ActionEnvironment.from_settings(ctx.settings, engine))
    return load_rules(rules_path(ctx, given), registry), registry


def run_check(ctx: CommandContext) -> int:
    path = rules_path(ctx, ctx.args.file)
    try:
        rules, _ = load_configured_rules(ctx, path)
    except RulesError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"ackmail: {path}: {len(exc.problems)} problem(s); fix them and run "
              "'ackmail rules check' again", file=sys.stderr)
        return 1
    print(f"{path}: {len(rules.rules)} rule(s), all valid")
    for number, rule in enumerate(rules.rules, 1):
        actions = ", ".join(spec.type for spec in rule.actions) or "(none)"
        stop = "; then stop" if rule.stop else ""
        print(f"  {number}. {rule.name} (line {rule.line}): on {', '.join(rule.on)} "
              f"-> {actions}{stop}")
    return 0


@dataclass(frozen=True)
class Prediction:
    """What ingest would make of a message: a summary and the events it would write."""

    summary: str
    events: list[tuple[str, dict[str, Any]]]


def run_test(ctx: CommandContext) -> int:
    rules, _ = load_configured_rules(ctx, ctx.args.rules)
    raw = _read(ctx.args.message)
    config = PipelineConfig.from_settings(ctx.settings)
    with read_session(ctx.store()) as session:
        prediction = predict_events(session, config, raw)
    print(f"{ctx.args.message}: {prediction.summary}")
    if not prediction.events:
        print("no events: no rule would run")
    for event_type, payload in prediction.events:
        print(f"event {event_type}:")
        for verdict in evaluate(rules, event_type, payload):
            if verdict.fired:
                actions = ", ".join(spec.type for spec in verdict.rule.actions) or "no action"
                print(f"  FIRES  {verdict.rule.name} -> {actions}  ({verdict.reason})")
            else:
                print(f"  no     {verdict.rule.name}: {verdict.reason}")
    return 0


def _read(name: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {name}: {exc.strerror}; check the path") from None


def predict_events(session: Session, config: PipelineConfig, raw: bytes) -> Prediction:
    """The events the pipeline would write for ``raw``, without writing anything."""
    parsed = parse_message(raw, config.parse)
    if parsed.problem:
        message = _message(parsed, MessageStatus.QUARANTINED, parsed.problem)
        return Prediction(f"quarantined: {parsed.problem}",
                          [_event("message.quarantined", message=message)])
    found = correlate(session, parsed, secret=config.token_secret,
                      reply_address=config.reply_address)
    if parsed.kind in IGNORED_KINDS:
        return Prediction(f"{IGNORED_KINDS[parsed.kind]}: ignored, ingest writes no event", [])
    if found.request is None:
        reason = f"not an answer to any request: {found.problem}"
        message = _message(parsed, MessageStatus.IGNORED, reason)
        return Prediction(reason, [_event("message.unmatched", message=message)])
    return _answer(parsed, found.request, Vote(found.recipient, parsed.sender, parsed.intent,
                                               utcnow()), config)


def _answer(parsed: ParsedMessage, request: Request, vote: Vote,
            config: PipelineConfig) -> Prediction:
    if parsed.kind == MessageKind.REPLY and request.subject:
        parsed = read_intent(parsed, config.parse, request_subject=request.subject)
        vote = Vote(vote.recipient, vote.sender, parsed.intent, vote.received_at)
    decision = decide(request, vote, [r for r in request.responses if r.counted])
    message = _message(parsed, MessageStatus.PROCESSED, decision.reason)
    response = Response(
        request_id=request.id, address=parsed.sender.address or "", intent=parsed.intent,
        reply_text=parsed.reply_text, counted=decision.counted, decisive=decision.decisive,
        reason=decision.reason, sender_verified=parsed.sender.verified,
    )
    events = [_event("response.recorded", message=message, request=request, response=response)]
    if decision.new_status is not None:
        decided = _event(f"request.{decision.new_status}", message=message, request=request,
                         response=response)
        # The pipeline settles the request in the same transaction; show it settled.
        decided[1]["request"] |= {"status": str(decision.new_status),
                                  "decided_at": isoformat_z(vote.received_at)}
        events.append(decided)
    summary = (f"{parsed.kind} from {parsed.sender.address}, intent {parsed.intent}, "
               f"request #{request.id} ({request.ref}): {decision.reason}")
    return Prediction(summary, events)


def _message(parsed: ParsedMessage, status: MessageStatus, reason: str) -> Message:
    """A message row that is never added to a session: only its payload is wanted."""
    return Message(mailbox=DRY_RUN_MAILBOX, source_key="-", message_id_header=parsed.message_id,
                   sender=parsed.sender.address, subject=parsed.subject,
                   kind=None if parsed.problem else parsed.kind, status=status, reason=reason)


def _event(event_type: str, **rows: Any) -> tuple[str, dict[str, Any]]:
    # A session that is never flushed: add_event only builds the payload here.
    with Session() as scratch:
        event = add_event(scratch, event_type, **rows)
    return event_type, dict(event.payload)
