"""What every page handler needs: the settings, the database and the templates.

Templates are Jinja2 with autoescape on for every file and for strings, and
StrictUndefined, so a misspelt name fails the test instead of rendering blank.
Subjects, reply text and reasons come from strangers' email: they are only ever
inserted as escaped text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import Engine

from ingest.config import Settings
from ingest.timeutil import as_utc, utcnow
from ingest.web.http import WebResponse, html

_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def when(moment: datetime | None) -> str:
    """A timestamp as ops read it: UTC, to the second."""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def span(seconds: float | None) -> str:
    """A duration in its largest unit and the next one: ``3 d 4 h``, ``5 min``, ``0 s``."""
    if seconds is None:
        return "—"
    left = max(0, round(seconds))
    for index, (size, unit) in enumerate(_UNITS):
        if left >= size or size == 1:
            parts = [f"{left // size} {unit}"]
            if index + 1 < len(_UNITS):
                smaller, smaller_unit = _UNITS[index + 1]
                rest = left % size // smaller
                parts += [f"{rest} {smaller_unit}"] if rest else []
            return " ".join(parts)
    raise AssertionError("unreachable: the last unit (1 s) always matches")


def ago(moment: datetime | None) -> str:
    """How long ago ``moment`` was (``—`` for never)."""
    return "—" if moment is None else f"{span((utcnow() - moment).total_seconds())} ago"


def link(path: str, **params: Any) -> str:
    """``path`` with the non-empty ``params`` as its query string."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


def make_templates() -> Environment:
    """The page templates in ``ingest/web/templates``, escaping everything by default."""
    environment = Environment(
        loader=PackageLoader("ingest.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(when=when, ago=ago, span=span)
    environment.globals.update(link=link)
    return environment


@dataclass(frozen=True)
class Site:
    """The server's shared, read-only state."""

    settings: Settings
    engine: Engine
    templates: Environment

    @classmethod
    def create(cls, settings: Settings, engine: Engine) -> Site:
        return cls(settings, engine, make_templates())

    def page(self, template: str, **values: Any) -> WebResponse:
        """Render ``template`` as an HTML response."""
        return html(self.templates.get_template(template).render(**values))
