"""``ackmail rules check [FILE]`` and ``ackmail rules test FILE.eml``.

``check`` validates the rules file and names file:LINE for every problem.
``test`` runs a message through the real pipeline in a transaction that is
rolled back, takes the events ingest wrote for it, and shows which rules would
fire on each — and why every other rule would not. Nothing is recorded, sent
or delivered.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.cli.context import CommandContext
from ingest.errors import UserError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ingest.parse.base import ParsedMessage
    from ingest.pipeline import PipelineConfig, Processed

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


def run_check(ctx: CommandContext) -> int:
    from ingest.app import configured_rules, rules_path
    from rules.base import RulesError

    path = rules_path(ctx.settings, ctx.args.file)
    try:
        rules, _ = configured_rules(ctx.settings, path)
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
    from ingest.app import configured_rules
    from ingest.pipeline import PipelineConfig
    from rules.engine import evaluate

    rules, _ = configured_rules(ctx.settings, ctx.args.rules)
    raw = _read(ctx.args.message)
    config = PipelineConfig.from_settings(ctx.settings)
    prediction = predict_events(ctx.store(), config, raw)
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


def predict_events(engine: Engine, config: PipelineConfig, raw: bytes) -> Prediction:
    """The events the pipeline would write for ``raw``: the real pipeline runs, in a
    transaction that is rolled back, so nothing is recorded."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ingest.pipeline import Arrival
    from ingest.pipeline.handle import BatchRun
    from ingest.sources.base import SourceRef
    from ingest.store.models import Event

    arrival = Arrival(SourceRef(DRY_RUN_MAILBOX, f"rules-test:{uuid.uuid4().hex}"), raw)
    with Session(engine) as session:  # never committed
        (handled,) = BatchRun(session, config, [arrival]).run()
        result = handled.processed()
        events = [(event_type, dict(payload)) for event_type, payload in session.execute(
            select(Event.type, Event.payload)
            .where(Event.message_id == result.message_id).order_by(Event.id))]
    return Prediction(_summary(handled.parsed, result, events), events)


def _summary(parsed: ParsedMessage | None, result: Processed,
             events: list[tuple[str, dict[str, Any]]]) -> str:
    if parsed is None or result.request_id is None:
        return f"{result.status}: {result.reason}"
    ref = next((payload["request"]["ref"] for _, payload in events if "request" in payload), "")
    return (f"{parsed.kind} from {parsed.sender.address}, intent {result.intent}, "
            f"request #{result.request_id} ({ref}): {result.reason}")
