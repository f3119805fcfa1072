"""read_message: headers, ids, subject, date, recipients, bodies, charsets, limits."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from ingest.parse.base import ParseLimits
from ingest.parse.html_text import decode_text, html_to_text
from ingest.parse.mime import DecodedMessage, read_message


def eml(headers: str, body: bytes | str = "Approved.\r\n") -> bytes:
    """A message from header lines written with \\n and a body, with CRLF line ends."""
    head = headers.strip("\n").replace("\n", "\r\n").encode("utf-8")
    data = body.encode("utf-8") if isinstance(body, str) else body
    return head + b"\r\n\r\n" + data


def text_part(charset: str | None, payload: bytes, encoding: str = "8bit") -> bytes:
    """A single-part text/plain message carrying ``payload`` as sent."""
    param = f'; charset="{charset}"' if charset else ""
    return eml(f"From: a@example.com\nContent-Type: text/plain{param}\n"
               f"Content-Transfer-Encoding: {encoding}", payload)


def read(raw: bytes, **limits: int) -> DecodedMessage:
    return read_message(raw, ParseLimits(**limits))


# --- headers, ids, subject, date, recipients -----------------------------------------

def test_headers_are_unfolded_decoded_and_counted() -> None:
    message = read(eml("From: a@example.com\nX-Tag: one\nX-Tag: two\n"
                       "Subject: =?utf-8?q?Caf=C3=A9?=\n =?utf-8?q?_au_lait?=   ok"))
    assert message.headers.get("subject") == "Café au lait ok"
    assert message.headers.get_all("x-tag") == ("one", "two")
    assert message.headers.count("X-TAG") == 2
    assert "x-tag" in message.headers and "x-missing" not in message.headers
    assert len(message.headers) == 4
    assert (message.headers.raw("subject") or "").startswith("=?utf-8?q?Caf=C3=A9?=")
    assert message.headers.as_dict()["X-Tag"] == "one"


def test_subject_is_rfc2047_decoded_with_whitespace_folded() -> None:
    raw = eml("Subject: RE:  =?iso-8859-1?q?R=E9ponse?=\n\t=?utf-8?b?w6Agdm91cw==?=")
    assert read(raw).subject == "RE: Réponseà vous"


def test_encoded_words_use_mail_charsets_only() -> None:
    raw = eml("Subject: =?unicode_escape?q?\\x41pproved?= =?iso-8859-1?q?=80?= "
              "=?x-unknown?q?caf=E9?=")
    # Adjacent encoded words join without their separating space (RFC 2047 section 6.2).
    assert read(raw).subject == "\\x41pproved€caf\ufffd"


def test_raw_utf8_in_a_header_is_read_as_utf8() -> None:
    assert read(eml("Subject: Genehmigt für Müller")).subject == "Genehmigt für Müller"


def test_message_ids_are_normalised_to_angle_brackets() -> None:
    message = read(eml("Message-ID: <abc@x.test>\n"
                       "In-Reply-To: <req-1@contoso.test> (Alice's message of Monday)\n"
                       "References: <a@x.test>\n <b@x.test> <a@x.test>\nReferences: <c@x.test>"))
    assert message.message_id == "<abc@x.test>"
    assert message.in_reply_to == "<req-1@contoso.test>"
    assert message.references == ("<a@x.test>", "<b@x.test>", "<c@x.test>")


def test_bare_message_id_gets_brackets_and_loses_folding_space() -> None:
    message = read(eml("Message-ID: bare@x.test\nIn-Reply-To: <req-1@\n contoso.test>"))
    assert message.message_id == "<bare@x.test>"
    assert message.in_reply_to == "<req-1@contoso.test>"


def test_date_is_timezone_aware_utc() -> None:
    message = read(eml("Date: Tue, 25 Nov 2025 10:00:00 +0100"))
    assert message.date == datetime(2025, 11, 25, 9, 0, tzinfo=UTC)


def test_unreadable_date_is_none_and_a_defect() -> None:
    message = read(eml("Date: next Tuesday-ish"))
    assert message.date is None
    assert "unreadable Date header" in message.defects


def test_recipients_come_from_four_headers_lower_cased_once() -> None:
    message = read(eml('To: "Approvals" <Approvals+R7K2-9QXM@Contoso.com>\n'
                       "Cc: bob@example.com, Carol <CAROL@example.com>\n"
                       "Delivered-To: approvals@contoso.com\nX-Original-To: bob@example.com"))
    assert message.recipients == ("approvals+r7k2-9qxm@contoso.com", "bob@example.com",
                                  "carol@example.com", "approvals@contoso.com")


# --- bodies -------------------------------------------------------------------------------

def alternative(plain: str, html: str) -> bytes:
    message = EmailMessage()
    message["From"] = "a@example.com"
    message.set_content(plain)
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


def test_plain_part_is_preferred_over_html() -> None:
    message = read(alternative("Plain wins.\n", "<p>HTML loses.</p>"))
    assert message.body_text.strip() == "Plain wins."
    assert message.body_is_html is False
    assert message.structure.content_type == "multipart/alternative"
    assert message.structure.part_count == 3


def test_top_boundary_rename_leaves_no_trace() -> None:
    raw = alternative("Plain wins.\n", "<p>HTML loses.</p>")
    message = read(raw)
    boundary = raw.split(b'boundary="')[1].split(b'"')[0].decode()
    content_type = message.headers.get("content-type") or ""
    assert boundary in content_type
    assert "ackmail" not in content_type


def test_boundary_lines_in_a_non_multipart_body_stay_text() -> None:
    body = "--x\r\nhi\r\n--x--\r\n"
    raw = eml('From: a@example.com\nContent-Type: text/plain; boundary="x"', body)
    assert read(raw).body_text == body


def test_message_already_holding_the_rename_token_parses_unrenamed() -> None:
    raw = alternative("Mentions =_ackmail_top_boundary_= here.\n", "<p>x</p>")
    assert read(raw).body_text.strip() == "Mentions =_ackmail_top_boundary_= here."


def test_html_only_body_is_converted_to_text_with_quotes() -> None:
    html = ("<html><head><style>p {color: red}</style><title>t</title></head><body>"
            "<p>Approved &amp; done,<br>Alice</p><script>var x = 1;</script>"
            "<div>On Monday Bob wrote:</div><blockquote><p>Please approve</p></blockquote>"
            "</body></html>")
    message = read(eml("From: a@example.com\nContent-Type: text/html; charset=utf-8", html))
    assert message.body_is_html is True
    assert message.body_text.splitlines() == [
        "Approved & done,", "Alice", "On Monday Bob wrote:", "> Please approve"]


def test_html_converter_keeps_the_senders_words_unescaped() -> None:
    text, complete = html_to_text("<p>1. Approve - yes \\o/ <b>now</b></p><hr><p>x</p>")
    assert complete is True
    assert text.splitlines() == ["1. Approve - yes \\o/ now", "_" * 32, "x"]


def test_html_converter_stops_cleanly_on_markup_it_cannot_follow() -> None:
    text, complete = html_to_text("<p>Approved</p><![foo bar]><p>rest</p>")
    assert (text, complete) == ("Approved", False)


def test_hostile_quote_nesting_is_capped_and_quick() -> None:
    html = "<blockquote>" * 60_000 + "<br>x" * 40_000
    start = time.process_time()
    message = read(eml("From: a@example.com\nContent-Type: text/html", html))
    assert time.process_time() - start < 2.0
    lines = message.body_text.splitlines()
    assert lines[1] == "> " * 20 + "x"
    assert max(map(len, lines)) == 41


def test_attachments_are_not_the_body() -> None:
    message = EmailMessage()
    message["From"] = "a@example.com"
    message.set_content("The real reply.\n")
    message.add_attachment(b"attached words", maintype="text", subtype="plain",
                           filename="notes.txt")
    decoded = read(message.as_bytes())
    assert decoded.body_text.strip() == "The real reply."
    assert decoded.structure.content_type == "multipart/mixed"


def test_related_body_is_read_from_its_start_part() -> None:
    raw = eml('From: a@example.com\nContent-Type: multipart/related; boundary="r"; '
              'start="<main@x>"',
              "--r\r\nContent-Type: text/html\r\nContent-ID: <other@x>\r\n\r\n<p>Not me</p>\r\n"
              "--r\r\nContent-Type: text/html\r\nContent-ID: <main@x>\r\n\r\n<p>Me</p>\r\n"
              "--r--\r\n")
    assert read(raw).body_text == "Me"


def test_forwarded_message_text_is_not_the_body() -> None:
    raw = eml('From: a@example.com\nContent-Type: multipart/mixed; boundary="m"',
              "--m\r\nContent-Type: message/rfc822\r\n\r\nSubject: old\r\n\r\nOld text\r\n"
              "--m--\r\n")
    assert read(raw).body_text == ""


def test_text_limit_cuts_the_body_and_says_so() -> None:
    message = read(text_part("utf-8", b"a" * 5000), max_text_chars=1000)
    assert message.body_text == "a" * 1000
    assert "body text cut at 1,000 characters" in message.defects


# --- charsets and transfer encodings --------------------------------------------------------

WORDS = {
    "utf-8": "Genehmigt, Müller — ok",
    "iso-8859-1": "Approuvé, très bien",
    "iso-8859-2": "Schváleno, děkuji",
    "iso-8859-15": "Approuvé pour 10 €",
    "windows-1250": "Zatwierdzam, dziękuję",
    "windows-1252": "Approved – “go”",
    "koi8-r": "Одобрено, спасибо",
    "shift_jis": "承認します",
    "gb2312": "同意，谢谢",
}


@pytest.mark.parametrize("charset", sorted(WORDS))
def test_declared_charsets_decode(charset: str) -> None:
    message = read(text_part(charset, WORDS[charset].encode(charset)))
    assert message.body_text == WORDS[charset]
    assert message.defects == ()


@pytest.mark.parametrize("encoding", ["quoted-printable", "base64"])
def test_transfer_encodings_decode(encoding: str) -> None:
    message = EmailMessage()
    message["From"] = "a@example.com"
    message.set_content("Одобрено - ok\n", charset="koi8-r", cte=encoding)
    assert encoding in message.as_string()
    assert read(message.as_bytes()).body_text == "Одобрено - ok\n"


def test_broken_base64_is_read_and_recorded() -> None:
    payload = base64.b64encode(b"Approved").rstrip(b"=")[:-1] + b"=\r\n"
    message = read(text_part("utf-8", payload, "base64"))
    assert message.body_text.startswith("Approve")
    assert "InvalidBase64PaddingDefect" in message.defects or \
        "InvalidBase64CharactersDefect" in message.defects


@pytest.mark.parametrize(("label", "payload", "text", "defect"), [
    ("utf8", "Müller".encode(), "Müller", None),
    ("latin1", "Müller".encode("latin-1"), "Müller", None),
    ("x-unknown", "Müller".encode(), "Müller", "unknown charset 'x-unknown'; read as utf-8"),
    ("x-unknown", "Müller".encode("cp1252"), "Müller",
     "unknown charset 'x-unknown'; read as cp1252"),
    ("utf-8", "Müller".encode("latin-1"), "Müller",
     "body declared utf-8 is not utf-8; read as cp1252"),
    (None, "Müller".encode(), "Müller", "8-bit body without a charset; read as utf-8"),
    (None, b"plain ascii", "plain ascii", None),
    ("base64", b"QXBwcm92ZWQ=", "QXBwcm92ZWQ=", "unknown charset 'base64'; read as utf-8"),
])
def test_wrong_or_missing_charsets_fall_back(label: str | None, payload: bytes, text: str,
                                             defect: str | None) -> None:
    message = read(text_part(label, payload))
    assert message.body_text == text
    assert (defect in message.defects) if defect else message.defects == ()


def test_python_only_codecs_are_not_honoured() -> None:
    decoded, defects = decode_text(b"\\x41pprove", "unicode_escape")
    assert decoded == "\\x41pprove"
    assert defects == ["unknown charset 'unicode_escape'; read as utf-8"]


def test_bytes_no_codec_reads_are_replaced() -> None:
    decoded, defects = decode_text(b"ok \x81\x8d", "utf-8")
    assert decoded == "ok \ufffd\ufffd"
    assert defects == ["undecodable body bytes replaced"]


# --- structure summary -----------------------------------------------------------------------

def test_report_structure_is_summarised() -> None:
    raw = eml('From: MAILER-DAEMON@x.test\nContent-Type: multipart/report; '
              'report-type="Delivery-Status"; boundary="b"',
              "--b\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"
              "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
              "Final-Recipient: rfc822; a@x\r\nAction: failed\r\n--b--\r\n")
    structure = read(raw).structure
    assert structure.content_type == "multipart/report"
    assert structure.report_type == "delivery-status"
    assert structure.has_delivery_status and not structure.has_disposition_notification


def test_report_inside_a_forwarded_message_does_not_count() -> None:
    raw = eml('From: a@example.com\nContent-Type: multipart/mixed; boundary="o"',
              "--o\r\nContent-Type: text/plain\r\n\r\nSee the bounce below.\r\n"
              "--o\r\nContent-Type: message/rfc822\r\n\r\n"
              'Content-Type: multipart/report; boundary="i"\r\n\r\n'
              "--i\r\nContent-Type: message/disposition-notification\r\n\r\nX: y\r\n--i--\r\n"
              "--o--\r\n")
    structure = read(raw).structure
    assert not structure.has_disposition_notification
    assert structure.depth == 3  # rfc822 wrapper, its report, the notification


# --- limits and garbage -----------------------------------------------------------------------

def assert_quick_problem(raw: bytes, expected: str, seconds: float = 2.0, **limits: int) -> None:
    start = time.process_time()
    message = read(raw, **limits)
    elapsed = time.process_time() - start
    assert message.problem is not None and expected in message.problem, message.problem
    assert elapsed < seconds, f"{elapsed:.2f}s"


def test_oversized_message_is_refused_before_parsing_but_keeps_its_ids() -> None:
    raw = eml("Message-ID: <big@x.test>\nSubject: huge", b"a" * (50 * 1024 * 1024))
    assert_quick_problem(raw, "over the 26,214,400-byte limit (raise [limits] max_bytes")
    message = read(raw)
    assert (message.message_id, message.subject, message.body_text) == ("<big@x.test>", "huge", "")
    assert (message.problem or "").startswith(f"message is {len(raw):,} bytes")


def test_header_flood_is_refused() -> None:
    raw = b"X-H: v\r\n" * 100_000 + b"\r\nbody"
    assert_quick_problem(raw, "100,000 header lines, over the 1,000-header limit")


def test_part_flood_is_refused() -> None:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(10_000))
    raw = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + b"--b--\r\n"
    assert_quick_problem(raw, "more than 500 MIME parts (raise [limits] max_parts")


def nested(depth: int) -> bytes:
    head = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
                    for i in range(depth))
    tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    return b"From: a@x.test\r\n" + head + b"Content-Type: text/plain\r\n\r\nhi" + tail


def test_deep_nesting_is_refused() -> None:
    assert_quick_problem(nested(100), "more than 20 levels deep (raise [limits] max_depth")


def test_thousand_deep_nesting_is_refused_quickly() -> None:
    assert_quick_problem(nested(1000), "more than 20 levels deep", max_parts=5000)


def test_nesting_within_the_limit_is_read() -> None:
    message = read(nested(19))
    assert (message.problem, message.body_text, message.structure.depth) == (None, "hi", 19)


def test_line_flood_is_refused() -> None:
    raw = b"Subject: x\r\n\r\n" + b"x\r\n" * 3_000_000
    assert_quick_problem(raw, "message has 3,000,002 lines, more parsing work than the "
                         "26,214,400-byte limit allows (raise [limits] max_bytes")


def test_line_flood_inside_nesting_is_refused_sooner() -> None:
    body = b"x\r\n" * 400_000
    raw = nested(19).replace(b"\r\n\r\nhi", b"\r\n\r\n" + body)
    assert_quick_problem(raw, "lines nested 19 levels deep, more parsing work")
    assert read(raw.replace(body, body[:len(body) // 2])).problem is None


def test_deep_message_rfc822_chain_is_refused() -> None:
    raw = b"From: a@x.test\r\n" + b"Content-Type: message/rfc822\r\n\r\n" * 1000 + b"\r\nbody"
    assert_quick_problem(raw, "deep")


def test_part_with_too_many_headers_is_refused() -> None:
    part_headers = b"X-H: v\r\n" * 50
    raw = (b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n' + part_headers
           + b"\r\nx\r\n--b--\r\n")
    assert_quick_problem(raw, "a MIME part has 50 headers, over the 40-header limit",
                         max_headers=40)


@pytest.mark.parametrize(("raw", "expected"), [
    (b"", "message is empty"),
    (b"\r\n \r\n", "message is empty"),
    (b"\x00\x01\x02\xff binary junk", "do not start with a mail header"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "do not start with a mail header"),
])
def test_bytes_that_are_not_a_message_are_a_problem(raw: bytes, expected: str) -> None:
    assert_quick_problem(raw, expected)


def test_nul_bytes_do_not_break_anything() -> None:
    message = read(b"Subject: a\x00b\r\nFrom: x\x00@y.test\r\n\r\nApp\x00roved")
    assert message.problem is None
    assert message.body_text == "App\x00roved"
    assert message.subject == "a\x00b"


def test_mbox_from_line_is_accepted() -> None:
    message = read(b"From alice@example.com Mon Jan  1 00:00:00 2024\nSubject: hi\n\nbody")
    assert (message.problem, message.subject, message.body_text) == (None, "hi", "body")


def test_lone_cr_line_ends_still_parse() -> None:
    raw = (b'Content-Type: multipart/alternative; boundary="q"\r\rpreamble\r--q\r'
           b"Content-Type: text/plain\r\rHello\r--q--\r")
    message = read(raw)
    assert message.problem is None
    assert message.body_text.strip() == "Hello"
