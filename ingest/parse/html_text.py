"""The text a reader sees: of the message body, and of header fields.

Bodies take three steps: pick the body part as ``EmailMessage.get_body(("plain",
"html"))`` would; decode it by its declared charset, falling back (and recording a
defect) when the label is missing, unknown or lies; convert HTML-only bodies to text.
Header fields are unfolded, raw 8-bit read as UTF-8, and encoded words decoded by the
strict header parser, with charset labels mapped the same way as for bodies.

HTML is read with the standard library's lenient ``html.parser`` (entities, broken
markup, Outlook's conditional comments). html2text was measured and not used: it
emits Markdown, escaping the sender's words ("1\\.", "\\-", doubled backslashes,
"**"), and it was slower on the same reply bodies. Quoted history keeps a "> " prefix
per ``<blockquote>`` level so the reply-text layer cuts it like a plain-text quote.
The containers mail clients wrap quoted history in (Gmail's ``gmail_quote``, Yahoo's
``yahoo_quoted``, Thunderbird's ``moz-cite-prefix``, Apple Mail's ``AppleMailQuote``)
quote one level like a blockquote. Outlook puts the original message after its header
block rather than inside it, so its markers (``divRplyFwdMsg``, the ``border-top``
separator div) quote everything from there to the end.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from email.headerregistry import HeaderRegistry
from email.message import Message
from html.parser import HTMLParser

from ingest.parse.base import ParseLimits

# Built once: HeaderRegistry creates a new class on every lookup by name.
_UNSTRUCTURED = HeaderRegistry()["subject"]
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)((?:\*[^?\s]*)?\?[bBqQ]\?[^?\s]*\?=)")
_BODY_PREFERENCE = {"plain": 0, "html": 1}  # get_body(preferencelist=("plain", "html"))
# Labels Python does not know, mapped to the codec they mean in mail.
_CHARSET_LABELS = {"iso-8859-8-i": "iso8859-8", "windows-874": "cp874", "x-sjis": "cp932"}
# Codecs whose superset real clients actually write (the WHATWG Encoding Standard).
_SUPERSETS = {"ascii": "utf-8", "iso8859-1": "cp1252", "iso8859-9": "cp1254",
              "gb2312": "gb18030", "gbk": "gb18030", "shift_jis": "cp932",
              "euc_kr": "cp949", "big5": "cp950"}
_FALLBACK_CODECS = ("utf-8", "cp1252")
# Python codecs no mail client decodes with; honouring them would let a sender show the
# reader one text and us another (charset=unicode_escape turns "\\x41" into "A").
_NOT_MAIL_CHARSETS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"})
_HTML_INPUT_FACTOR = 4  # markup per visible character read before the text limit applies

# Content a mail client never shows.
_HIDDEN_TAGS = frozenset({"head", "script", "style", "title", "template", "xml"})
# Elements that start and end a line of text.
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt",
    "fieldset", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
})
# Table cells sit side by side on one line.
_CELL_TAGS = frozenset({"td", "th"})
# Outlook's plain-text rendering of the <hr> above a quoted reply header; emitting the
# same line lets one reply-header rule serve HTML and plain-text mail.
_RULE_LINE = "_" * 32
# Classes of the elements clients wrap quoted history in (with its attribution line).
_QUOTE_CLASSES = frozenset({
    "gmail_quote", "gmail_quote_container", "yahoo_quoted", "moz-cite-prefix",
    "applemailquote", "protonmail_quote", "zmail_extra",
})
# Ids of the elements that open Outlook's quoted history, which runs to the end.
_HISTORY_IDS = frozenset({"divrplyfwdmsg", "mail-editor-reference-message-container"})
# Outlook desktop's separator: a div with only a top border, holding the From/Sent block.
_OUTLOOK_SEPARATOR = re.compile(r"border\s*:\s*none.*border-top\s*:\s*solid", re.DOTALL)
# Deeper quoting still shows this many marks: hostile nesting must not multiply memory.
_MAX_QUOTE_MARKS = 20
# Open <div>s tracked for their end tags; deeper ones cannot be quote containers.
_MAX_DIVS = 1000
_SPACES = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def read_body(root: Message, limits: ParseLimits) -> tuple[str, bool, list[str]]:
    """The text the sender's client shows (plain preferred), whether it was HTML, defects."""
    part = _find_body(root)
    if part is None:
        return "", False, []
    payload = part.get_payload(decode=True)
    text, defects = decode_text(payload if isinstance(payload, bytes) else b"",
                                part.get_content_charset())
    defects.extend(type(defect).__name__ for defect in part.defects)
    is_html = part.get_content_type() == "text/html"
    if is_html:
        text, complete = html_to_text(text[:limits.max_text_chars * _HTML_INPUT_FACTOR])
        if not complete:
            defects.append("HTML body only partly readable")
    if len(text) > limits.max_text_chars:
        text = text[:limits.max_text_chars]
        defects.append(f"body text cut at {limits.max_text_chars:,} characters")
    return text, is_html, defects


def child_parts(part: Message) -> list[Message]:
    """The sub-parts of a multipart or message/* part; [] for a leaf."""
    if not part.is_multipart():
        return []  # a leaf's get_payload() decodes 8-bit text by its charset, which can raise
    return [child for child in part.get_payload() if isinstance(child, Message)]


def _find_body(root: Message) -> Message | None:
    """``EmailMessage.get_body(("plain", "html"))`` for compat32 trees, without recursion."""
    best: tuple[int, Message] | None = None
    stack = [root]
    while stack:
        part = stack.pop()
        if part.get_content_disposition() == "attachment":
            continue
        maintype, _, subtype = part.get_content_type().partition("/")
        rank = _BODY_PREFERENCE.get(subtype) if maintype == "text" else None
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, part)
            if rank == 0:
                break
        if maintype == "multipart":
            stack.extend(reversed(_body_candidates(part, subtype)))
    return best[1] if best else None


def _body_candidates(part: Message, subtype: str) -> list[Message]:
    """Where get_body looks inside a multipart: all parts, or only the root of a related."""
    children = child_parts(part)
    if subtype != "related" or not children:
        return children
    start = part.get_param("start")
    chosen = [child for child in children if start and child.get("content-id") == start]
    return chosen[:1] or children[:1]


def decode_text(data: bytes, label: str | None) -> tuple[str, list[str]]:
    """Decode body bytes by their declared charset, falling back (with a defect) on a lie.

    Tries the declared codec, then UTF-8, then windows-1252; when all fail, UTF-8
    replaces what it cannot read. Never raises.
    """
    codec = charset_codec(label)
    for name in dict.fromkeys((codec, *_FALLBACK_CODECS) if codec else _FALLBACK_CODECS):
        try:
            text = data.decode(name)
        except UnicodeError:
            continue
        return text, _charset_defects(label, codec, name, data)
    return data.decode("utf-8", "replace"), ["undecodable body bytes replaced"]


def charset_codec(label: str | None) -> str | None:
    """The Python codec for a charset label, or None when mail cannot mean it."""
    if not label:
        return None
    try:
        name = codecs.lookup(_CHARSET_LABELS.get(label, label)).name
        b"a".decode(name)  # rejects bytes-to-bytes codecs such as base64 or zlib
    except UnicodeError:
        pass  # a text codec that cannot read a lone "a" (UTF-16 wants byte pairs)
    except (LookupError, ValueError):
        return None
    return None if name in _NOT_MAIL_CHARSETS else _SUPERSETS.get(name, name)


def _charset_defects(label: str | None, codec: str | None, used: str, data: bytes) -> list[str]:
    if codec is not None:
        return [] if used == codec else [f"body declared {label} is not {codec}; read as {used}"]
    if label:
        return [f"unknown charset {label!r}; read as {used}"]
    return [] if data.isascii() else [f"8-bit body without a charset; read as {used}"]


def excerpt(text: str, limit: int = 80) -> str:
    """``text`` fit for a reason string: control characters escaped, cut at ``limit``."""
    shown = repr(text[:limit])[1:-1]
    return shown[:limit] + "..." if len(shown) > limit or len(text) > limit else shown


def header_str(value: object) -> str:
    """Unfold a raw header value; raw 8-bit bytes are read as UTF-8 (RFC 6532)."""
    text = str(value)
    text = (_FOLD.sub("", text) if "\n" in text else text).strip()
    if text.isascii():
        return text
    data = text.encode("ascii", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def decode_header_text(value: str) -> str:
    """RFC 2047-decode an unfolded header value and fold its whitespace to single spaces."""
    if "=?" in value:
        # Callers outside read_message (kind, sender) rely on "never raises" too.
        with contextlib.suppress(Exception):
            value = str(_UNSTRUCTURED("subject", mail_charsets(value)))
    return " ".join(value.split())


def mail_charsets(value: str) -> str:
    """``value`` with each encoded word labelled by the codec mail means by its charset.

    The standard library decodes encoded words with any Python codec, so
    ``=?unicode_escape?q?...?=`` would show us text no mail client shows; such labels
    become ``unknown-8bit`` (read as replacement characters), and ``iso-8859-1`` its
    windows-1252 superset, as for bodies.
    """
    return _ENCODED_WORD.sub(
        lambda word: f"=?{charset_codec(word.group(1).lower()) or 'unknown-8bit'}{word.group(2)}",
        value)


class _TextCollector(HTMLParser):
    """Collects visible text line by line; tags only decide where lines break."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._words: list[str] = []
        self._hidden = 0
        self._quote = 0
        self._pre = 0
        self._history = False  # inside Outlook's quoted history, which runs to the end
        self._divs: list[bool] = []  # per open <div>: whether it is a quote container

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag == "br":
            self._end_line(keep_empty=True)
        elif tag == "hr":
            self._end_line()
            self.lines.append(self._prefix() + _RULE_LINE)
        elif tag in _BLOCK_TAGS:
            self._end_line()
            container = _quote_marker(tag, attrs, self)
            if tag == "blockquote":
                self._quote += 1
            elif tag == "pre":
                self._pre += 1
            elif tag == "div" and len(self._divs) < _MAX_DIVS:
                self._divs.append(container)
                self._quote += container
        elif tag in _CELL_TAGS and self._words:
            self._words.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self._end_line()
            if tag == "blockquote":
                self._quote = max(0, self._quote - 1)
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            if tag == "div" and self._divs and self._divs.pop():
                self._quote = max(0, self._quote - 1)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if not self._pre:
            self._words.append(_SPACES.sub(" ", data))
            return
        first, *rest = data.split("\n")
        self._words.append(first)
        for line in rest:
            self._end_line(keep_empty=True)
            self._words.append(line)

    def finish(self) -> str:
        """The collected text, blank-line runs collapsed."""
        self._end_line()
        return _BLANK_RUNS.sub("\n\n", "\n".join(self.lines)).strip("\n")

    def _prefix(self) -> str:
        return "> " * min(self._quote + self._history, _MAX_QUOTE_MARKS)

    def open_history(self) -> None:
        """Quote everything from here on: Outlook's header block and the message after it."""
        self._history = True

    def _end_line(self, keep_empty: bool = False) -> None:
        text = "".join(self._words).strip()
        self._words.clear()
        if text or keep_empty:
            self.lines.append((self._prefix() + text).rstrip())


def _quote_marker(tag: str, attrs: list[tuple[str, str | None]], into: _TextCollector) -> bool:
    """Whether the element opens quoted history: True for a container quoting its own
    content; an Outlook marker quotes everything after it instead (and gives False)."""
    found = dict(attrs)
    classes = set((found.get("class") or "").lower().split())
    if (found.get("id") or "").lower() in _HISTORY_IDS or (
        tag == "div" and _OUTLOOK_SEPARATOR.search((found.get("style") or "").lower())
    ):
        into.open_history()
        return False
    return bool(classes & _QUOTE_CLASSES)


def html_to_text(html: str) -> tuple[str, bool]:
    """Convert an HTML body to readable text.

    Returns the text and whether the whole document was read; markup the parser
    cannot follow (a malformed ``<![...]>`` section) ends the conversion early
    instead of raising, keeping the text before it.
    """
    collector = _TextCollector()
    try:
        collector.feed(html)
        collector.close()
    except AssertionError:  # _markupbase's reaction to an unknown marked section
        return collector.finish(), False
    return collector.finish(), True


