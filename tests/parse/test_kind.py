"""classify_kind: every rule, the order between kinds, and the vocabulary file."""

from __future__ import annotations

import pytest

from ingest.parse.base import MessageKind
from ingest.parse.kind import KIND_RULES, VOCABULARY_FILE, classify_kind, load_vocabulary
from ingest.parse.mime import read_message

REPLY, AUTO, BOUNCE, RECEIPT, NEW = (MessageKind.REPLY, MessageKind.AUTO_REPLY,
                                     MessageKind.BOUNCE, MessageKind.RECEIPT, MessageKind.NEW)
THREADED = "In-Reply-To: <req-1@contoso.test>\nReferences: <req-1@contoso.test>"


def classify(headers: str, body: str = "Approved.\r\n") -> tuple[MessageKind, tuple[str, ...]]:
    raw = headers.strip("\n").replace("\n", "\r\n").encode() + b"\r\n\r\n" + body.encode()
    return classify_kind(read_message(raw))


def report(report_type: str | None, extra: str = "") -> str:
    """Headers of a multipart/report; REPORT_BODY gives it its parts."""
    param = f'; report-type="{report_type}"' if report_type else ""
    return f'From: x@mx.test\n{extra}\nContent-Type: multipart/report{param}; boundary="b"'.replace(
        "\n\n", "\n")


REPORT_BODY = ("--b\r\nContent-Type: text/plain\r\n\r\nNotice.\r\n"
               "--b\r\nContent-Type: {part}\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\n"
               "Final-Recipient: rfc822; a@x.test\r\n--b--\r\n")


def test_rule_names_are_unique_and_rows_grouped_by_kind() -> None:
    names = [rule.name for rule in KIND_RULES]
    assert len(names) == len(set(names))
    order = [rule.kind for rule in KIND_RULES]
    groups = [kind for i, kind in enumerate(order) if i == 0 or order[i - 1] != kind]
    assert groups == [BOUNCE, RECEIPT, AUTO, REPLY]


def test_vocabulary_loads_and_compiles() -> None:
    vocabulary = load_vocabulary(VOCABULARY_FILE)
    assert vocabulary.auto_subjects.match("automatic reply:")
    assert "mailer-daemon" in vocabulary.bounce_senders


# --- bounce --------------------------------------------------------------------------------

def test_delivery_status_report_is_a_bounce() -> None:
    kind, reasons = classify(report("delivery-status", THREADED),
                             REPORT_BODY.format(part="message/delivery-status"))
    assert kind == BOUNCE
    assert reasons == ("multipart/report; report-type=delivery-status",
                       "message/delivery-status part")


def test_delivery_status_part_without_report_type_is_a_bounce() -> None:
    kind, reasons = classify(report(None), REPORT_BODY.format(part="message/delivery-status"))
    assert (kind, reasons) == (BOUNCE, ("message/delivery-status part",))


@pytest.mark.parametrize("sender", [
    "MAILER-DAEMON@mx.example.com", "postmaster@contoso.test",
    '"Mail Delivery Subsystem" <bounces@google.test>',
    "Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.test>",
])
def test_mail_system_senders_are_bounces(sender: str) -> None:
    kind, reasons = classify(f"From: {sender}\nSubject: Something\n{THREADED}")
    assert kind == BOUNCE
    assert reasons[0].endswith("is a mail system")


@pytest.mark.parametrize("subject", [
    "Undeliverable: RE: Approve CR-1", "Delivery Status Notification (Failure)",
    "Mail delivery failed: returning message to sender", "Returned mail: see transcript",
    "Unzustellbar: AW: Freigabe", "Non remis : RE: Approbation", "failure notice",
])
def test_bounce_subjects(subject: str) -> None:
    kind, reasons = classify(f"From: someone@x.test\nSubject: {subject}\n{THREADED}")
    assert kind == BOUNCE
    assert reasons[0].startswith("subject starts with")


def test_null_return_path_with_bounce_text_is_a_bounce() -> None:
    body = "Hi. This is the qmail-send program at mx.test.\r\nI'm afraid I wasn't able...\r\n"
    kind, reasons = classify("Return-Path: <>\nFrom: someone@x.test\nSubject: hello", body)
    assert (kind, reasons) == (BOUNCE, ("Return-Path <> and the body says "
                                        "'this is the qmail-send program'",))


def test_null_return_path_alone_is_not_a_bounce() -> None:
    kind, _ = classify(f"Return-Path: <>\nFrom: a@x.test\nSubject: Re: hi\n{THREADED}")
    assert kind == REPLY


# --- receipt --------------------------------------------------------------------------------

def test_disposition_notification_report_is_a_receipt() -> None:
    kind, reasons = classify(
        report("disposition-notification", THREADED),
        REPORT_BODY.format(part="message/disposition-notification"))
    assert kind == RECEIPT
    assert reasons == ("multipart/report; report-type=disposition-notification",
                       "message/disposition-notification part")


def test_outlook_read_receipt_by_content_class() -> None:
    kind, reasons = classify("From: alice@x.test\nSubject: Read: Approve CR-1\n"
                             "Content-Class: urn:content-classes:MDN\n"
                             "X-MS-Exchange-Organization-AuthAs: Internal\n" + THREADED)
    assert kind == RECEIPT
    assert reasons == ("Content-Class: urn:content-classes:mdn", "subject starts with 'read:'")


@pytest.mark.parametrize("subject", ["Read: Approve", "Lu : Approbation", "Gelesen: Freigabe",
                                     "Not read: Approve", "Leído: Aprobación"])
def test_receipt_subjects(subject: str) -> None:
    assert classify(f"From: a@x.test\nSubject: {subject}")[0] == RECEIPT


# --- auto-reply -------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "reason"), [
    ("Auto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
    ("Auto-Submitted: Auto-Generated; owner-email=x@y", "Auto-Submitted: auto-generated"),
    ("X-Autoreply: yes", "x-autoreply: yes"),
    ("X-Autorespond: Vacation", "x-autorespond: Vacation"),
    ("Precedence: bulk", "Precedence: bulk"),
    ("Precedence: junk", "Precedence: junk"),
    ("Precedence: auto_reply", "Precedence: auto_reply"),
    ("Precedence: list", "Precedence: list"),
])
def test_auto_reply_headers(header: str, reason: str) -> None:
    kind, reasons = classify(f"From: a@x.test\nSubject: Re: Approve\n{header}\n{THREADED}")
    assert (kind, reasons) == (AUTO, (reason,))


@pytest.mark.parametrize("header", ["Auto-Submitted: no", "X-Autoreply: no",
                                    "Precedence: first-class"])
def test_negative_auto_headers_leave_a_reply(header: str) -> None:
    assert classify(f"From: a@x.test\nSubject: Re: x\n{header}\n{THREADED}")[0] == REPLY


def test_auto_response_suppress_alone_is_not_an_auto_reply() -> None:
    kind, _ = classify(f"From: a@x.test\nSubject: RE: x\nX-Auto-Response-Suppress: All\n{THREADED}")
    assert kind == REPLY


def test_auto_response_suppress_with_exchange_rule_loop_is_an_auto_reply() -> None:
    kind, reasons = classify("From: a@x.test\nSubject: RE: x\nX-Auto-Response-Suppress: All\n"
                             f"X-MS-Exchange-Inbox-Rules-Loop: a@x.test\n{THREADED}")
    assert kind == AUTO
    assert reasons == ("X-Auto-Response-Suppress: All with X-MS-Exchange-Inbox-Rules-Loop",)


def test_rule_loop_without_an_oof_suppress_value_is_a_reply() -> None:
    kind, _ = classify("From: a@x.test\nSubject: RE: x\nX-Auto-Response-Suppress: RN, NRN\n"
                       f"X-MS-Exchange-Inbox-Rules-Loop: a@x.test\n{THREADED}")
    assert kind == REPLY


@pytest.mark.parametrize("subject", [
    "Automatic reply: Approve CR-1", "Auto: Approve", "Out of Office: Approve",
    "Abwesenheitsnotiz: Freigabe", "Automatische Antwort: Freigabe",
    "Réponse automatique : Approbation", "Absence du bureau", "Respuesta automática: Aprobar",
    "Fuera de la oficina", "Automatisch antwoord: Goedkeuring", "Afwezig", "Ausente",
    "Resposta automática: Aprovação", "[EXTERNAL] Automatic reply: Approve",
])
def test_auto_reply_subjects(subject: str) -> None:
    kind, reasons = classify(f"From: a@x.test\nSubject: {subject}\n{THREADED}")
    assert kind == AUTO
    assert reasons[0].startswith("subject starts with")


def test_word_entries_need_a_word_boundary() -> None:
    assert classify("From: a@x.test\nSubject: Afwezigheid melden")[0] == NEW


# --- reply and new ----------------------------------------------------------------------------

def test_threading_headers_make_a_reply() -> None:
    kind, reasons = classify(f"From: a@x.test\nSubject: Approve\n{THREADED}")
    assert (kind, reasons) == (REPLY, ("In-Reply-To <req-1@contoso.test>",
                                       "References 1 earlier message"))


@pytest.mark.parametrize("subject", ["Re: x", "RE: x", "AW: x", "RE : x", "SV: x", "Antw: x",
                                     "R: x", "RES: x", "Re[2]: x", "Re(3): x", "[EXT] Re: x",
                                     "回复：你好"])
def test_reply_prefixes_without_threading_headers(subject: str) -> None:
    kind, reasons = classify(f"From: a@x.test\nSubject: {subject}")
    assert kind == REPLY
    assert reasons[0].startswith("subject starts with")


@pytest.mark.parametrize("subject", ["Fwd: x", "FW: x", "WG: x", "TR: x", "RV: x", "Enc: x",
                                     "Reply needed", "Reminder: x", "Approve CR-1"])
def test_forwards_and_fresh_subjects_are_new(subject: str) -> None:
    kind, reasons = classify(f"From: a@x.test\nSubject: {subject}")
    assert (kind, reasons) == (NEW, ("no In-Reply-To, References or reply prefix",))


# --- order ---------------------------------------------------------------------------------------

def test_bounce_beats_receipt_auto_and_reply() -> None:
    kind, reasons = classify(f"From: MAILER-DAEMON@x.test\nSubject: Read: x\n"
                             f"Auto-Submitted: auto-replied\n{THREADED}")
    assert kind == BOUNCE
    assert all("mail system" in reason for reason in reasons)


def test_receipt_beats_auto_reply() -> None:
    kind, _ = classify("From: a@x.test\nSubject: Read: x\nAuto-Submitted: auto-replied")
    assert kind == RECEIPT


def test_auto_reply_beats_reply() -> None:
    kind, reasons = classify(f"From: a@x.test\nSubject: Automatic reply: Re: x\n{THREADED}")
    assert (kind, reasons) == (AUTO, ("subject starts with 'automatic reply:'",))


def test_a_problem_message_is_not_classified() -> None:
    kind, reasons = classify_kind(read_message(b""))
    assert kind == NEW
    assert reasons[0].startswith("not classified: message is empty")
