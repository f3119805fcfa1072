"""Rules files: what loads, and every problem reported at its file:line with a remedy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.config import SmtpConfig
from ingest.errors import ConfigError
from rules.actions.registry import ActionRegistry, build_registry
from rules.base import ActionEnvironment, RulesError
from rules.loader import load_rules, parse_rules
from rules.sourcemap import SourceMap

SMTP = SmtpConfig(host="127.0.0.1", port=587, from_address="ackmail@example.test")
TEMPLATE = Path(__file__).parents[2] / "ingest" / "cli" / "templates" / "rules.toml"

GOOD = """\
# [[rule]] in a comment is not a rule
[[rule]]
name = "tell-the-change-system"
description = "decisions on change requests go to the change system"
on = ["request.approved", "request.rejected"]
when = { ref = "CR-*" }

[[rule.action]]
type = "webhook"
url = "https://changes.example.com/hooks/ackmail"
secret = { env = "HOOK_SECRET" }
max_attempts = 3

[[rule]]
name = "everything-else"
on = ["request.*"]
stop = true

[[rule.action]]
type = "log"
message = '''
decided ${request.ref}
[[rule]] inside a string is not a rule either
'''
"""

# Each problem is marked with "#!" on the line it must be reported at.
BAD = """\
verbose = true  #!
[[rule]]
name = "first"
on = ["request.aproved"]  #!
when = { "response.intnt" = "unknown", ref = { regex = "(" } }  #! #!
colour = "red"  #!

[[rule.action]]
type = "webhok"  #!

[[rule.action]]
type = "webhook"
url = "ftp://changes.example.com/"  #!
timout = 5  #!
max_attempts = 0  #!

[[rule]]  #!
name = "first"
on = ["message.unmatched"]

[[rule.action]]
type = "email"
to = ["ops@example.test", "not-an-address", "${response.address}"]  #! #!
subject = "about ${message.subjct}"  #!
body = "costs $5"  #!

[[rule.action]]
type = "command"
argv = ["no-such-program-4711"]  #!

[[rule]]  #!
name = "no-actions"
on = ["response.recorded"]
"""


@pytest.fixture
def registry() -> ActionRegistry:
    return build_registry(ActionEnvironment(smtp=SMTP), plugins=[])


def test_a_good_file_loads_in_order(
    tmp_path: Path, registry: ActionRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret-value")
    path = tmp_path / "rules.toml"
    path.write_text(GOOD)

    rules = load_rules(path, registry)

    first, second = rules.rules
    assert (first.name, first.line, first.on) == (
        "tell-the-change-system", 2, ("request.approved", "request.rejected"))
    [hook] = first.actions
    assert hook.type == "webhook" and hook.line == 8
    assert hook.params == {"url": "https://changes.example.com/hooks/ackmail",
                           "secret": {"env": "HOOK_SECRET"}, "timeout": 10.0,
                           "max_attempts": 3}
    assert "s3cret-value" not in repr(rules)
    assert second.on == ("request.approved", "request.rejected", "request.acknowledged",
                         "request.expired")
    assert second.stop and second.line == 14
    assert second.actions[0].params["max_attempts"] == 8


def test_every_problem_is_reported_at_its_line(tmp_path: Path, registry: ActionRegistry) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(BAD)
    expected = [n for n, line in enumerate(BAD.splitlines(), 1) for _ in re.findall("#!", line)]

    with pytest.raises(RulesError) as failure:
        load_rules(path, registry)

    problems = failure.value.problems
    assert [p.line for p in problems] == expected
    assert all(str(p).startswith(f"{path}:{p.line}: ") for p in problems)
    text = str(failure.value)
    for remedy in ("did you mean 'response.intent'", "did you mean 'timeout'",
                   "did you mean 'message.subject'", "use one of webhook, email, command, log",
                   "http:// or https://", "write $$ for a dollar sign", "is already used by the "
                   "rule at line 2", "'not-an-address', which is not an email address",
                   "not an executable file", "has no [[rule.action]]", "1 to 100",
                   "only [[rule]] tables", "rule key 'colour' is not known"):
        assert remedy in text


def test_a_responder_template_on_an_event_without_one_is_refused(
    tmp_path: Path, registry: ActionRegistry
) -> None:
    text = ('[[rule]]\nname = "x"\non = ["message.unmatched"]\n[[rule.action]]\n'
            'type = "email"\nto = ["${response.address}"]\nsubject = "s"\nbody = "b"\n')
    with pytest.raises(RulesError, match=r"rules.toml:6: .*'response.address', which this "):
        parse_rules(text, tmp_path / "rules.toml", registry)


def test_toml_syntax_errors_name_the_line(tmp_path: Path, registry: ActionRegistry) -> None:
    with pytest.raises(RulesError) as failure:
        parse_rules('[[rule]]\nname = "x"\non = [\n', tmp_path / "rules.toml", registry)
    [problem] = failure.value.problems
    assert problem.line == 4 and "not valid TOML" in problem.message


def test_an_unreadable_file_is_a_config_error(tmp_path: Path, registry: ActionRegistry) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_rules(tmp_path / "missing.toml", registry)


def test_unset_secret_environment_variable_is_refused(
    tmp_path: Path, registry: ActionRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    with pytest.raises(RulesError, match=r"rules.toml:11: webhook action: secret reads "
                                         "environment variable HOOK_SECRET, which is not set"):
        parse_rules(GOOD, tmp_path / "rules.toml", registry)


def test_inline_secrets_are_refused(tmp_path: Path, registry: ActionRegistry) -> None:
    text = GOOD.replace('{ env = "HOOK_SECRET" }', '"plain-text-secret"')
    with pytest.raises(RulesError, match=r"rules.toml:11: .*secret must be a table"):
        parse_rules(text, tmp_path / "rules.toml", registry)


def test_file_secrets_are_stored_as_absolute_references(
    tmp_path: Path, registry: ActionRegistry
) -> None:
    (tmp_path / "hook.key").write_text("from-a-file\n")
    text = GOOD.replace('{ env = "HOOK_SECRET" }', '{ file = "hook.key" }')
    rules = parse_rules(text, tmp_path / "rules.toml", registry)
    assert rules.rules[0].actions[0].params["secret"] == {"file": str(tmp_path / "hook.key")}


def test_email_needs_smtp(tmp_path: Path) -> None:
    bare = build_registry(ActionEnvironment(), plugins=[])
    text = ('[[rule]]\nname = "x"\non = "auth.failed"\n[[rule.action]]\ntype = "email"\n'
            'to = "ops@example.test"\nsubject = "s"\nbody = "${cause}"\n')
    with pytest.raises(RulesError, match=r":5: email action: email needs an \[smtp\] table"):
        parse_rules(text, tmp_path / "rules.toml", bare)


def _uncomment_examples(text: str) -> str:
    """The template with its commented-out example rules and actions switched on."""
    lines, inside = [], False
    for line in text.splitlines():
        inside = line.startswith("# [[rule") or (inside and line.startswith("#"))
        lines.append(re.sub(r"^# ?", "", line) if inside else line)
    return "\n".join(lines)


def test_the_default_rules_file_is_valid_with_and_without_its_examples(
    registry: ActionRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACKMAIL_WEBHOOK_SECRET", "x")
    text = TEMPLATE.read_text()
    plain = parse_rules(text, TEMPLATE, build_registry(ActionEnvironment(), plugins=[]))
    assert {"auth.failed", "auth.expiring"} <= {t for r in plain.rules for t in r.on}

    full = parse_rules(_uncomment_examples(text), TEMPLATE, registry)

    assert len(full.rules) == len(plain.rules) + 2
    by_name = {rule.name: rule for rule in full.rules}
    assert [a.type for a in by_name["sign-in-failed"].actions] == ["log", "email"]
    assert by_name["did-you-mean"].actions[0].params["to"] == ["${response.address}"]


def test_source_map_finds_keys_in_tables_and_inline_tables() -> None:
    source = SourceMap(GOOD)
    assert source.rule_line(1) == 14
    assert source.action_line(0, 0) == 8
    assert source.key_line(0, "when") == 6
    assert source.key_line(0, "url", 0) == 10
    assert source.key_line(0, "nothing-like-it", 0) == 8  # falls back to the table header
    assert source.find_key_after(6, "ref") == 6
    assert source.rule_span(1) == (14, len(GOOD.splitlines()))
