"""README.md is the users' reference: it links only inside the repository, and every link
and anchor it has resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_no_link_leaves_the_repository() -> None:
    targets = LINK.findall(README)
    assert targets, "the README has links to check"
    outside = [t for t in targets if t.startswith("..") or t.startswith("/")]
    assert outside == []
    for target in targets:
        if target.startswith(("http://", "https://", "#")):
            continue
        assert (ROOT / target.split("#")[0]).exists(), target


def test_every_anchor_names_a_heading() -> None:
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", README, re.MULTILINE)}
    wanted = [t[1:] for t in LINK.findall(README) if t.startswith("#")]
    assert {"commands", "guarantees", "the-database"} <= set(wanted)
    assert [a for a in wanted if a not in anchors] == []
