"""The SVG bar charts: bar sizes follow the values, stacks stack, labels stay text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ingest.web.charts import HEIGHT, TOP, BarChart, Series, render_chart, tick_step

SVG = "{http://www.w3.org/2000/svg}"


def bars(chart: BarChart) -> list[dict[str, str]]:
    root = ET.fromstring(str(render_chart(chart)))
    return [dict(rect.attrib) for rect in root.iter(f"{SVG}rect")
            if "bar" in rect.get("class", "").split()]


def height(bar: dict[str, str]) -> float:
    return float(bar["height"])


@pytest.mark.parametrize(("top", "step"), [
    (0, 1), (3, 1), (4, 1), (5, 2), (9, 3), (17, 5), (40, 10), (41, 20), (99, 25), (1001, 500)])
def test_ticks_are_round_whole_steps(top: int, step: int) -> None:
    assert tick_step(top) == step
    assert 4 * step >= top


def test_stacked_bars_stack_and_scale_with_the_values() -> None:
    chart = BarChart("c", "t", ("d1", "d2"), (Series("approve", (3, 1)), Series("reject", (1, 0))),
                     stacked=True)
    drawn = bars(chart)
    assert [(b["data-series"], b["data-value"]) for b in drawn] == [
        ("approve", "3"), ("reject", "1"), ("approve", "1")]
    first, on_top, second = drawn
    assert first["x"] == on_top["x"]  # one column per day
    assert float(on_top["y"]) + height(on_top) == pytest.approx(float(first["y"]), abs=0.2)
    assert height(first) == pytest.approx(3 * height(second), rel=0.01)
    # The tallest stack (4) reaches the top tick (4 * step 1): the top of the plot.
    assert float(on_top["y"]) == pytest.approx(TOP, abs=0.2)
    assert [b["class"] for b in drawn] == ["bar s0", "bar s1", "bar s0"]


def test_grouped_bars_stand_side_by_side_on_the_axis() -> None:
    chart = BarChart("c", "t", ("fast", "slow"),
                     (Series("approval", (2, 4)), Series("alert", (4, 0))))
    drawn = bars(chart)
    bottoms = {round(float(b["y"]) + height(b), 1) for b in drawn}
    assert len(bottoms) == 1 and bottoms.pop() < HEIGHT
    approval_fast, alert_fast, approval_slow = drawn
    assert float(alert_fast["x"]) > float(approval_fast["x"])
    assert height(alert_fast) == pytest.approx(height(approval_slow))
    assert height(alert_fast) == pytest.approx(2 * height(approval_fast))


def test_an_empty_chart_has_axes_and_no_bars() -> None:
    chart = BarChart("c", "nothing yet", ("a", "b"), (Series("x", (0, 0)),), stacked=True)
    assert bars(chart) == []
    assert "nothing yet" in str(render_chart(chart))


def test_labels_are_escaped_text() -> None:
    hostile = "<script>alert(1)</script>"
    chart = BarChart("c", hostile, (hostile,), (Series(hostile, (1,)),))
    markup = str(render_chart(chart))
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    root = ET.fromstring(markup)
    assert root.find(f"{SVG}title") is not None
    assert root.find(f"{SVG}title").text == hostile  # type: ignore[union-attr]
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
