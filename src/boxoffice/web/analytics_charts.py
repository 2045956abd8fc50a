"""The sales charts of ``/admin/analytics`` as server-rendered SVG geometry (no chart library, no script).

From analytics' published windows and summary: tickets per minute and revenue per minute (bars), cumulative
sell-through % (a line) and the sold-out moment (a marker on every chart). Pure: numbers in, shapes out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from boxoffice.web.domain import format_clock, format_money, parse_time

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 84, 12, 14, 30


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str
    negative: bool


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    line: str = ""  # SVG polyline points
    left: int = LEFT
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    marker: tuple[float, str] | None = None  # the sold-out moment
    baseline: float = HEIGHT - BOTTOM


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    tickets: int
    revenue: int
    currency: str

    @property
    def per_minute(self) -> float:
        return 60.0 / max(1.0, (self.end - self.start).total_seconds())


def windows_of(items: Sequence[Mapping[str, Any]]) -> list[Window]:
    return [
        Window(parse_time(i["window_start"]), parse_time(i["window_end"]), int(i["total_tickets"]),
               int(i["revenue_minor"]), str(i["currency"]))
        for i in items
    ]


def _nice(top: float) -> float:
    """A round axis maximum at or above ``top``."""
    if top <= 0:
        return 1.0
    step = 10.0 ** (len(str(int(top))) - 1)
    for factor in (1, 2, 2.5, 5, 10):
        if top <= step * factor:
            return step * factor
    return top


class _Frame:
    def __init__(self, start: datetime, end: datetime, low: float, high: float) -> None:
        self.start, self.span = start, max(1.0, (end - start).total_seconds())
        self.low, self.high = low, high if high > low else low + 1

    def x(self, at: datetime) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (at - self.start).total_seconds() / self.span

    def y(self, value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (self.high - value) / (self.high - self.low)

    def x_ticks(self, windows: Sequence[Window]) -> list[tuple[float, str]]:
        every = max(1, -(-len(windows) // 5))
        short = any((w.end - w.start).total_seconds() < 60 for w in windows)  # windows shorter than a minute
        return [(round(self.x(w.start), 1), w.start.strftime("%H:%M:%S") if short else format_clock(w.start))
                for w in windows[::every]]


def _bars(key: str, title: str, windows: Sequence[Window], value: Callable[[Window], float],
          label: Callable[[float], str], frame_of: Callable[[float, float], _Frame]) -> Chart:
    values = [value(w) for w in windows]
    low = 0.0 if min(values) >= 0 else -_nice(-min(values))
    high = _nice(max(values)) if max(values) > 0 else 0.0
    frame = frame_of(low, high)
    zero = frame.y(0)
    bars = []
    for w, v in zip(windows, values, strict=True):
        x0, x1 = frame.x(w.start), frame.x(w.end)
        top = frame.y(v)
        bars.append(Bar(round(x0 + 1, 1), round(min(top, zero), 1), round(max(1.0, x1 - x0 - 2), 1),
                        round(abs(zero - top), 1), f"{format_clock(w.start)}: {label(v)}", v < 0))
    ticks = [(round(frame.y(t), 1), label(t)) for t in sorted({low, 0.0, high})]
    return Chart(key, title, bars=bars, y_ticks=ticks, x_ticks=frame.x_ticks(windows), baseline=round(zero, 1))


def sales_charts(items: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> list[Chart]:
    """The three charts, or [] before the first window is published."""
    windows = windows_of(items)
    if not windows:
        return []
    start, end = windows[0].start, windows[-1].end
    sold_out = parse_time(summary["sold_out_at"]) if summary.get("sold_out_at") else None
    if sold_out is not None and sold_out > end:
        end = sold_out

    def frame_of(low: float, high: float) -> _Frame:
        return _Frame(start, end, low, high)

    currency = windows[0].currency
    tickets = _bars("tickets", "Tickets per minute", windows, lambda w: w.tickets * w.per_minute,
                    lambda v: f"{v:g}", frame_of)
    revenue = _bars("revenue", "Revenue per minute", windows, lambda w: w.revenue * w.per_minute,
                    lambda v: _short_money(round(v), currency), frame_of)
    charts = [tickets, revenue]
    capacity = summary.get("capacity")
    if capacity:
        frame = _Frame(start, end, 0, 100)
        total, points = 0, [f"{frame.x(start):.1f},{frame.y(0):.1f}"]
        for w in windows:
            total += w.tickets
            points.append(f"{frame.x(w.end):.1f},{frame.y(min(100.0, max(0.0, 100 * total / capacity))):.1f}")
        charts.append(Chart("sell-through", "Sold so far (% of capacity)", line=" ".join(points),
                            y_ticks=[(round(frame.y(t), 1), f"{t}%") for t in (0, 50, 100)],
                            x_ticks=frame.x_ticks(windows), baseline=round(frame.y(0), 1)))
    if sold_out is not None:
        x = round(_Frame(start, end, 0, 1).x(sold_out), 1)
        charts = [_with_marker(c, (x, f"Sold out {format_clock(sold_out)}")) for c in charts]
    return charts


def _short_money(minor: int, currency: str) -> str:
    """An axis label: whole units once they are large (``€2,000`` rather than ``€2,000.00``)."""
    text = format_money(minor, currency)
    return text.replace(".00", "") if abs(minor) >= 10_000 else text


def _with_marker(chart: Chart, marker: tuple[float, str]) -> Chart:
    return replace(chart, marker=marker)
