"""The template helpers: times, durations, links, and escaping on by default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from http import HTTPStatus

import pytest

from ingest.web.site import link, make_templates, span, when


@pytest.mark.parametrize(("seconds", "shown"), [
    (None, "—"), (0, "0 s"), (59.6, "1 min"), (90, "1 min 30 s"), (3600, "1 h"),
    (3661, "1 h 1 min"), (86_430, "1 d"), (90_000, "1 d 1 h"), (-5, "0 s")])
def test_span_shows_the_two_largest_units(seconds: float | None, shown: str) -> None:
    assert span(seconds) == shown


def test_when_is_utc_to_the_second() -> None:
    paris = timezone(timedelta(hours=1))
    assert when(datetime(2026, 11, 2, 11, 4, 5, 999, tzinfo=paris)) == "2026-11-02 10:04:05 UTC"
    assert when(datetime(2026, 11, 2, 10, 4, 5, tzinfo=UTC)) == "2026-11-02 10:04:05 UTC"
    assert when(None) == "—"


def test_link_keeps_only_given_parameters_and_encodes_them() -> None:
    assert link("/requests") == "/requests"
    assert link("/requests", status=None, ref="", page=2) == "/requests?page=2"
    assert link("/requests", ref="CR-*&x=<1>") == "/requests?ref=CR-%2A%26x%3D%3C1%3E"


def test_templates_escape_by_default() -> None:
    templates = make_templates()
    assert templates.from_string("{{ v }}").render(v="<b>") == "&lt;b&gt;"
    page = templates.get_template("error.html").render(status=HTTPStatus.NOT_FOUND,
                                                       message="no <script>x</script>")
    assert "no &lt;script&gt;x&lt;/script&gt;" in page and "<script>" not in page
    assert "<title>404 Not Found · ackmail</title>" in page
