"""Templates: dotted field names, checked against the rule's events, filled from payloads."""

from __future__ import annotations

from rules.fields import event_fields, lookup
from rules.templates import render, template_problems

PAYLOAD = {"event": "request.approved", "request": {"ref": "CR-1", "subject": None},
           "response": {"decisive": True, "intent": "approve"}}


def test_render_fills_dotted_fields_and_aliases() -> None:
    text = "$event: ${request.ref} ($ref) by ${intent}; decisive ${response.decisive}; " \
           "subject '${request.subject}'; missing '${message.sender}'; $$5."
    assert render(text, PAYLOAD) == ("request.approved: CR-1 (CR-1) by approve; decisive yes; "
                                     "subject ''; missing ''; $5.")


def test_a_field_at_the_end_of_a_sentence_keeps_its_full_stop() -> None:
    assert render("Decided: $request.ref.", PAYLOAD) == "Decided: CR-1."


def test_problems_name_unknown_fields_and_stray_dollars() -> None:
    known = event_fields("request.expired")
    assert template_problems("${request.ref} $ref", known) == []
    [unknown] = template_problems("${response.address}", known)
    assert "field 'response.address', which this rule's events do not carry" in unknown
    [typo] = template_problems("${request.rf}", known)
    assert "did you mean 'request.ref'?" in typo
    [stray] = template_problems("costs $ 5", known)
    assert "write $$ for a dollar sign" in stray


def test_lookup_tells_absent_from_null() -> None:
    assert lookup(PAYLOAD, "request.subject") == (True, None)
    assert lookup(PAYLOAD, "request.nothing") == (False, None)
    assert lookup(PAYLOAD, "request.ref.deeper") == (False, None)
    assert lookup(PAYLOAD, "ref") == (True, "CR-1")
