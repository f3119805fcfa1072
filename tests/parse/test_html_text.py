"""HTML bodies: the quote containers of each mail client become quoted text, so the
reply text is what the person wrote above them."""

from __future__ import annotations

import pytest

from ingest.parse.html_text import html_to_text
from ingest.parse.reply_text import extract_reply

GMAIL = (
    '<div dir="ltr">Approved, go ahead.</div><br><div class="gmail_quote gmail_quote_container">'
    '<div dir="ltr" class="gmail_attr">Am Mo., 7. Dez. 2026 um 09:12 Uhr schrieb Ops Bot &lt;'
    'ops@example.test&gt;:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px '
    '0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">Please reply APPROVE or '
    "REJECT.</blockquote></div>"
)
OUTLOOK_WEB = (
    '<div dir="ltr"><div style="font-family:Calibri">Rejected - not this quarter.</div></div>'
    '<hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr">'
    '<font face="Calibri" style="font-size:11pt"><b>Von:</b> Ops Bot &lt;ops@example.test&gt;<br>'
    "<b>Gesendet:</b> Montag, 7. Dezember 2026 09:12<br><b>An:</b> Anna<br><b>Betreff:</b> "
    "Approval needed</font><div>&nbsp;</div></div><div>Please reply APPROVE or REJECT.</div>"
)
OUTLOOK_DESKTOP = (
    '<div class="WordSection1"><p class="MsoNormal">Ack, looking into it.<o:p></o:p></p>'
    '<div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
    '<p class="MsoNormal"><b>Fra:</b> Ops Bot &lt;ops@example.test&gt;<br><b>Sendt:</b> '
    "7. december 2026 09:12<br><b>Til:</b> Anna<br><b>Emne:</b> Disk full</p></div></div>"
    '<p class="MsoNormal">Disk /var is 97% full. Please acknowledge.</p></div>'
)
THUNDERBIRD = (
    "<p>Yes, go ahead.</p><div class=\"moz-cite-prefix\">Dne 7. 12. 2026 v 9:12 Ops Bot "
    'napsal(a):<br></div><blockquote type="cite" cite="mid:x@example.test">Please reply '
    "APPROVE or REJECT.</blockquote>"
)
APPLE = (
    '<div dir="auto">Approved.</div><div dir="auto"><br><blockquote type="cite">'
    "7 dec. 2026 kl. 09:12 skrev Ops Bot &lt;ops@example.test&gt;:<br><br></blockquote>"
    '</div><blockquote type="cite" class="AppleMailQuote"><div dir="ltr">Please reply APPROVE '
    "or REJECT.</div></blockquote>"
)
YAHOO = (
    '<div class="ydp1"><div>Nein, nicht jetzt.</div></div><div id="yahoo_quoted_1" '
    'class="yahoo_quoted"><div style="font-size:13px">Ops Bot &lt;ops@example.test&gt; '
    "escribió el lunes, 7 de diciembre de 2026:</div><div><div>Please reply APPROVE or REJECT."
    "</div></div></div>"
)


@pytest.mark.parametrize(
    ("html", "reply"),
    [
        (GMAIL, "Approved, go ahead."),
        (OUTLOOK_WEB, "Rejected - not this quarter."),
        (OUTLOOK_DESKTOP, "Ack, looking into it."),
        (THUNDERBIRD, "Yes, go ahead."),
        (APPLE, "Approved."),
        (YAHOO, "Nein, nicht jetzt."),
    ],
    ids=["gmail", "outlook-web", "outlook-desktop", "thunderbird", "apple-mail", "yahoo"],
)
def test_client_quote_markers_leave_only_the_new_text(html: str, reply: str) -> None:
    text, complete = html_to_text(html)
    assert complete
    assert extract_reply(text).text == reply
    assert "> " in text and "Ops Bot" in text  # the history is quoted, not dropped


def test_outlook_history_quotes_everything_after_its_marker() -> None:
    text, _ = html_to_text(OUTLOOK_WEB)
    after = text.split("Rejected - not this quarter.", 1)[1].splitlines()
    # The <hr> above the marker stays Outlook's plain-text rule line.
    assert [line for line in after if not line.startswith(">")] == ["", "_" * 32]


def test_a_quote_container_ends_with_its_div() -> None:
    text, _ = html_to_text(
        '<div class="gmail_quote"><div>quoted</div></div><div>written below the quote</div>'
    )
    assert text.splitlines() == ["> quoted", "written below the quote"]


def test_plain_divs_and_borders_elsewhere_quote_nothing() -> None:
    text, _ = html_to_text(
        '<div style="border-top:solid 1px">Approved.</div><div class="signature">Anna</div>'
    )
    assert text.splitlines() == ["Approved.", "Anna"]


@pytest.mark.parametrize(
    "opening",
    [
        '<div class="gmail_quote">',
        '<div id="yahoo_quoted_1" class="yahoo_quoted">',
        '<div class="moz-cite-prefix">',
        '<div class="AppleMailQuote">',
        '<div id="divRplyFwdMsg">',
        '<div style="border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0in 0in 0in">',
    ],
)
def test_a_marker_alone_quotes_history_with_no_header_shape(opening: str) -> None:
    html = f"<div>Approved.</div>{opening}<div>Forwarding you this, reply APPROVE</div></div>"
    assert extract_reply(html_to_text(html)[0]).text == "Approved."
