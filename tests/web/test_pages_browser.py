"""The ops pages in a real headless Chromium: navigation, hostile text shown as text, no script.

The database is filled through the real pipeline (register_request + process_message);
the server is the real one on 127.0.0.1. Escaping is checked on its own (the hostile
strings are visible as text and no <script>/<img> element exists), and the CSP is
checked apart from it, so neither hides a failure of the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Dialog, Page
from sqlalchemy import Engine

from ingest.web.http import CSP
from tests.web.conftest import (
    ALICE,
    BOB,
    HOSTILE_REASON,
    HOSTILE_REPLY,
    HOSTILE_SUBJECT,
    LATE_NOTE,
    Filled,
    ServerFactory,
    add_checkpoint,
)


class Watched:
    """A page plus every dialog it opened and every CSP complaint it logged."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.csp_reports: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.csp_reports.append(message.text)

    def assert_inert(self) -> None:
        """No script ran, none was blocked (so none was injected), no markup was injected."""
        assert self.dialogs == []
        assert self.csp_reports == []
        assert self.page.locator("script").count() == 0
        assert self.page.locator("img").count() == 0


@pytest.fixture
def watched(chromium: BrowserContext) -> Iterator[Watched]:
    page = chromium.new_page()
    page.set_default_timeout(10_000)
    yield Watched(page)
    page.close()


def test_requests_page_leads_to_a_timeline_with_hostile_text_as_text(
    filled: Filled, server: ServerFactory, watched: Watched
) -> None:
    page = watched.page
    with server() as url:
        response = page.goto(f"{url}/requests")
        assert response is not None and response.status == 200
        assert response.headers["content-security-policy"] == CSP
        row = page.locator("#requests tbody tr", has_text="CR-7<b>")
        assert row.locator("td.subject").inner_text() == HOSTILE_SUBJECT
        assert row.locator(".badge").inner_text() == "approved"
        watched.assert_inert()

        row.get_by_role("link", name="CR-7<b>").click()
        page.wait_for_url(f"{url}/requests/{filled.approval_id}")
        assert page.locator("#subject").inner_text() == HOSTILE_SUBJECT
        assert page.locator("#ref").inner_text() == "CR-7<b>"
        response_entry = page.locator("li.entry-response", has_text=f"From {ALICE}")
        assert HOSTILE_REPLY in response_entry.locator("blockquote.reply-text").inner_text()
        assert "decisive" in response_entry.locator("h3").inner_text()
        assert "approve" in response_entry.locator("h3").inner_text()
        outcome = page.locator("table.outcomes tbody tr", has_text="tell-<i>changes</i>")
        assert "tell-<i>changes</i>" in outcome.inner_text()
        assert "HTTP 500 <html>oops</html>" in outcome.inner_text()
        assert outcome.locator(".badge").inner_text() == "dead"
        late = page.locator("li.entry-response", has_text=f"From {BOB}")
        assert "decisive" not in late.locator("h3").inner_text()
        assert late.locator("p.note").inner_text() == \
            f"Instruction kept with the decision: {LATE_NOTE}"
        kinds = [c.split()[-1] for c in page.locator("li.entry").evaluate_all(
            "items => items.map(i => i.className)")]
        assert kinds[0] == "entry-created" and {"entry-message", "entry-event"} <= set(kinds)
        watched.assert_inert()


def test_each_event_shows_which_rules_fired_why_others_did_not_and_each_outcome(
    filled: Filled, server: ServerFactory, watched: Watched
) -> None:
    with server() as url:
        watched.page.goto(f"{url}/requests/{filled.approval_id}")
        decided = watched.page.locator("li[data-event='request.approved']")
        trace = {
            row.locator("td").nth(0).inner_text(): (row.locator(".badge").inner_text(),
                                                    row.locator("td.reason").inner_text())
            for row in decided.locator("table.rule-trace tbody tr").all()
        }
        assert list(trace) == ["log-approvals", "page-on-alerts", "rejections-only"]
        assert trace["log-approvals"][0] == "fired"
        assert trace["page-on-alerts"][0] == "did not fire"
        assert "ALERT-*" in trace["page-on-alerts"][1] and "CR-7<b>" in trace["page-on-alerts"][1]
        assert trace["rejections-only"] == (
            "did not fire", "listens to request.rejected, not request.approved")
        actions = {row.locator("td").nth(1).inner_text(): row.locator(".badge").inner_text()
                   for row in decided.locator("table.outcomes tbody tr").all()}
        assert actions == {"log-approvals": "pending", "tell-<i>changes</i>": "dead"}
        watched.assert_inert()

        watched.page.goto(f"{url}/requests/{filled.alert_id}")
        acknowledged = watched.page.locator("li[data-event='request.acknowledged']")
        fired = acknowledged.locator("table.rule-trace tr.fired td").first.inner_text()
        assert fired == "page-on-alerts"
        watched.assert_inert()


def test_ignored_and_quarantined_messages_show_their_reasons(
    filled: Filled, server: ServerFactory, watched: Watched
) -> None:
    page = watched.page
    with server() as url:
        page.goto(f"{url}/messages?status=quarantined")
        row = page.locator("#messages tbody tr", has_text=f"{filled.quarantined_message_id}")
        assert row.locator("td.reason").inner_text() == HOSTILE_REASON
        watched.assert_inert()

        page.goto(f"{url}/messages")  # ignored is the first tab
        row = page.locator("#messages tbody tr").first
        assert row.locator("td.subject").inner_text() == HOSTILE_SUBJECT
        assert "not an answer to any request" in row.locator("td.reason").inner_text()
        row.get_by_role("link", name=str(filled.ignored_message_id)).click()
        page.wait_for_url(f"{url}/messages/{filled.ignored_message_id}")
        assert page.locator("ul.reasons li").count() >= 1
        watched.assert_inert()


def test_overview_draws_the_charts_and_mailboxes_page_renders(
    filled: Filled, server: ServerFactory, watched: Watched, engine: Engine
) -> None:
    # Polled two hours ago and not tried since: the poller has stopped.
    add_checkpoint(engine, "approvals", success_ago=timedelta(hours=2))
    page = watched.page
    with server() as url:
        page.goto(f"{url}/")
        bars = page.locator("#decisions-per-day-title").locator("xpath=..").locator("rect.bar")
        drawn = {bar.get_attribute("data-series"): int(bar.get_attribute("data-value") or 0)
                 for bar in bars.all()}
        assert drawn == {"approve": 1, "acknowledge": 1}
        kinds = page.locator("#time-to-decision-title").locator("xpath=..").locator("rect.bar")
        assert sorted(b.get_attribute("data-series") or "" for b in kinds.all()) == [
            "alert", "approval"]
        assert page.locator("svg.chart").first.bounding_box() is not None
        watched.assert_inert()

        page.get_by_role("link", name="Mailboxes").click()
        page.wait_for_url(f"{url}/mailboxes")
        folder = page.locator("#folders tbody tr", has_text="approvals")
        assert folder.count() == 1
        assert folder.locator(".badge").inner_text() == "stale"
        assert folder.locator("p.note").inner_text().startswith(
            "no poller is running: nothing has tried this folder since")
        assert page.locator("#counts tbody tr").count() >= 2
        watched.assert_inert()
