"""The limits checked before the parser meets a message: size, headers, parts, nesting.

The standard parser's cost grows with lines x nesting depth and it recurses once per
level, so a flood of parts or levels is refused from a scan of the declared MIME
boundaries, before the parse; ``mime`` then checks the parsed tree exactly.
"""

from __future__ import annotations

import re

from ingest.parse.base import ParseLimits

HEADER_START = re.compile(rb"(?:From [^\n]*\n)?[\x21-\x39\x3b-\x7e]+[ \t]*:")
BOUNDARY_PARAM = re.compile(
    rb'boundary\s*=\s*(?:"([^"\\\r\n]{1,200})"(?=[\s;]|$)|([^\s;"\\]{1,200})(?=[\s;]|$))', re.I)
# Every boundary parameter, also those the scan cannot read (RFC 2231, escapes, over-long).
_ANY_BOUNDARY_PARAM = re.compile(rb"boundary\s*[*=]", re.I)


def envelope_problem(raw: bytes, header_count: int, limits: ParseLimits) -> str | None:
    """Checks that need no parsing: emptiness, size, a header start, the header count."""
    if not raw or raw.isspace():
        return "message is empty; there is nothing to read"
    if len(raw) > limits.max_bytes:
        return (f"message is {len(raw):,} bytes, over the {limits.max_bytes:,}-byte limit "
                "(raise [limits] max_bytes to accept it)")
    if not HEADER_START.match(raw):
        return (f"bytes do not start with a mail header (they begin {raw[:16]!r}); "
                "this is not an email message")
    if header_count > limits.max_headers:
        return (f"message has {header_count:,} header lines, over the "
                f"{limits.max_headers:,}-header limit (raise [limits] max_headers to accept it)")
    return None


def parts_problem(limits: ParseLimits) -> str:
    return (f"message has more than {limits.max_parts:,} MIME parts "
            "(raise [limits] max_parts to accept it)")


def depth_problem(limits: ParseLimits) -> str:
    return (f"message nests MIME parts more than {limits.max_depth} levels deep "
            "(raise [limits] max_depth to accept it)")


def structure_estimate_problem(raw: bytes, limits: ParseLimits) -> str | None:
    """Refuse floods of parts, nesting or parse work before the parser meets them."""
    if raw.count(b"\r") != raw.count(b"\r\n"):  # the parser ends lines at lone CRs too
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    # Every part and every level of nesting needs a line starting "--": with few of
    # them, and a modest line count, nothing can go wrong and the boundary scan is spared.
    lines, dash_lines = raw.count(b"\n"), raw.count(b"\n--")
    budget = limits.max_bytes // 4
    if dash_lines < min(limits.max_parts, limits.max_depth) and lines * (3 + dash_lines) <= budget:
        return None
    problem, depth = _boundary_scan(raw, limits)
    unread = len(_ANY_BOUNDARY_PARAM.findall(raw)) > len(BOUNDARY_PARAM.findall(raw))
    if unread:  # boundaries the scan cannot read: every "--" line may open a level
        depth = max(depth, dash_lines)
    # The parser tests every line against each enclosing boundary, so its work grows
    # with lines x depth (~1 s at this budget); no real message comes near it.
    if problem is None and lines * (3 + depth) > budget:
        nesting = f" nested {'up to ' if unread else ''}{depth} levels deep" if depth else ""
        return (f"message has {lines:,} lines{nesting}, more parsing work than the "
                f"{limits.max_bytes:,}-byte limit allows (raise [limits] max_bytes to accept it)")
    return problem


def _boundary_scan(raw: bytes, limits: ParseLimits) -> tuple[str | None, int]:
    """Count parts and nesting from the declared boundaries' delimiter lines."""
    boundaries: set[bytes] = set()
    for match in BOUNDARY_PARAM.finditer(raw):
        boundaries.add((match.group(1) or match.group(2)).rstrip())
        if len(boundaries) > limits.max_parts:
            return parts_problem(limits), 0
    if not boundaries:
        return None, 0
    alternatives = b"|".join(re.escape(b) for b in sorted(boundaries, key=len, reverse=True))
    delimiter = re.compile(rb"^--(" + alternatives + rb")(--)?[ \t]*\r?$", re.MULTILINE)
    open_parts = deepest = 0
    stack: list[bytes] = []
    for match in delimiter.finditer(raw):
        boundary, closing = match.group(1), match.group(2) is not None
        if boundary in stack:
            del stack[stack.index(boundary) + (0 if closing else 1):]
        elif not closing:
            stack.append(boundary)
        open_parts += not closing
        deepest = max(deepest, len(stack))
        if open_parts >= limits.max_parts:
            return parts_problem(limits), deepest
        if deepest > limits.max_depth:
            return depth_problem(limits), deepest
    return None, deepest
