"""Bar charts as inline SVG, drawn on the server: no script, nothing for the CSP to allow.

ElementTree builds the markup, so every label and tooltip is escaped by the same
library that writes the tags. Colours come from the stylesheet (``.s0``, ``.s1``...
by series position), so a series keeps its colour as long as the caller keeps the
series order fixed.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from markupsafe import Markup

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 30, 44
MAX_X_LABELS = 12
TICKS = 4
LEGEND_GAP, LEGEND_CHAR = 24, 7  # swatch + spacing, and an 11px character's rough width


@dataclass(frozen=True)
class Series:
    """One named row of values, one per category."""

    name: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class BarChart:
    """Categories along x; series stacked on one bar or side by side."""

    chart_id: str
    title: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    stacked: bool = False
    y_label: str = ""

    def top_value(self) -> int:
        """The tallest bar: a stack's total, or the largest single value."""
        columns = list(zip(*(s.values for s in self.series), strict=True)) or [()]
        if self.stacked:
            return max((sum(column) for column in columns), default=0)
        return max((max(column, default=0) for column in columns), default=0)


def tick_step(top: int, ticks: int = TICKS) -> int:
    """The smallest round whole step such that ``ticks`` steps reach ``top``.

    Round: 1, 2, 2.5 or 5 times a power of ten, or 1 to 5 below ten.
    """
    wanted = max(1, math.ceil(top / ticks))
    power = 10 ** math.floor(math.log10(wanted))
    factors = (1.0, 2.0, 2.5, 5.0, 10.0) if power >= 10 else (1.0, 2.0, 3.0, 4.0, 5.0, 10.0)
    return next(int(f * power) for f in factors if f * power >= wanted)


def render_chart(chart: BarChart) -> Markup:
    """The chart as an ``<svg>`` element, safe to place in a page as it is."""
    plot = _Plot(chart)
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "class": "chart",
            "viewBox": f"0 0 {WIDTH} {HEIGHT}",
            "role": "img",
            "aria-labelledby": f"{chart.chart_id}-title",
        },
    )
    ET.SubElement(svg, "title", {"id": f"{chart.chart_id}-title"}).text = chart.title
    plot.draw_axes(svg)
    plot.draw_bars(svg)
    plot.draw_legend(svg)
    return Markup(ET.tostring(svg, encoding="unicode"))


class _Plot:
    """Scales from values to pixels for one chart."""

    def __init__(self, chart: BarChart) -> None:
        self.chart = chart
        self.step = tick_step(chart.top_value())
        self.y_max = self.step * TICKS
        self.width = WIDTH - LEFT - RIGHT
        self.height = HEIGHT - TOP - BOTTOM
        self.band = self.width / max(1, len(chart.categories))

    def y(self, value: float) -> float:
        return TOP + self.height - self.height * value / self.y_max

    def draw_axes(self, svg: ET.Element) -> None:
        for n in range(TICKS + 1):
            value = self.step * n
            y = f"{self.y(value):.1f}"
            ET.SubElement(svg, "line", {"class": "grid", "x1": str(LEFT),
                                        "x2": str(WIDTH - RIGHT), "y1": y, "y2": y})
            _text(svg, str(value), LEFT - 6, self.y(value) + 4, "tick end")
        if self.chart.y_label:
            _text(svg, self.chart.y_label, 4, TOP - 12, "axis-label")
        every = max(1, math.ceil(len(self.chart.categories) / MAX_X_LABELS))
        for index, label in enumerate(self.chart.categories):
            if index % every == 0:
                x = LEFT + self.band * (index + 0.5)
                _text(svg, label, x, HEIGHT - BOTTOM + 16, "tick middle")

    def draw_bars(self, svg: ET.Element) -> None:
        chart = self.chart
        lanes = 1 if chart.stacked else max(1, len(chart.series))
        bar = self.band * 0.8 / lanes
        for index, category in enumerate(chart.categories):
            left = LEFT + self.band * index + self.band * 0.1
            base = 0
            for lane, series in enumerate(chart.series):
                value = series.values[index]
                if value <= 0:
                    continue
                x = left if chart.stacked else left + bar * lane
                bottom = base if chart.stacked else 0
                rect = ET.SubElement(svg, "rect", {
                    "class": f"bar s{lane}",
                    "x": f"{x:.1f}",
                    "y": f"{self.y(bottom + value):.1f}",
                    "width": f"{max(bar - 1, 1):.1f}",
                    "height": f"{self.y(bottom) - self.y(bottom + value):.1f}",
                    "data-series": series.name,
                    "data-value": str(value),
                })
                ET.SubElement(rect, "title").text = f"{category} · {series.name}: {value}"
                if chart.stacked:
                    base += value

    def draw_legend(self, svg: ET.Element) -> None:
        """Swatches and names, right-aligned above the plot (the y label is on the left)."""
        widths = [LEGEND_GAP + LEGEND_CHAR * len(series.name) for series in self.chart.series]
        x = float(WIDTH - RIGHT - sum(widths))
        for lane, (series, width) in enumerate(zip(self.chart.series, widths, strict=True)):
            ET.SubElement(svg, "rect", {"class": f"swatch s{lane}", "x": f"{x:.0f}",
                                        "y": "8", "width": "10", "height": "10"})
            _text(svg, series.name, x + 14, 17, "legend")
            x += width


def _text(parent: ET.Element, content: str, x: float, y: float, css: str) -> None:
    element = ET.SubElement(parent, "text", {"class": css, "x": f"{x:.1f}", "y": f"{y:.1f}"})
    element.text = content
