"""The sales charts' geometry on /admin/analytics (pure: windows and summary in, SVG shapes out)."""

from __future__ import annotations

from typing import Any

from boxoffice.web.analytics_charts import BOTTOM, HEIGHT, LEFT, RIGHT, WIDTH, sales_charts


def window(minute: int, tickets: int, revenue: int) -> dict[str, Any]:
    return {"window_start": f"2026-12-01T10:{minute:02d}:00Z", "window_end": f"2026-12-01T10:{minute + 1:02d}:00Z",
            "total_tickets": tickets, "orders": 1, "revenue_minor": revenue, "currency": "EUR", "revision": 1}


def test_no_window_no_chart() -> None:
    assert sales_charts([], {"capacity": 10}) == []


def test_bars_lines_and_the_sold_out_marker() -> None:
    items = [window(0, 4, 4000), window(1, 6, 6000), window(3, -2, -2000)]
    tickets, revenue, sold = sales_charts(items, {"capacity": 10, "sold_out_at": "2026-12-01T10:01:30Z"})
    assert [c.key for c in (tickets, revenue, sold)] == ["tickets", "revenue", "sell-through"]
    heights = [b.height for b in tickets.bars]
    assert heights[1] > heights[0] > 0 and tickets.bars[2].negative and not tickets.bars[0].negative
    assert all(b.x >= LEFT and b.x + b.width <= WIDTH - RIGHT + 0.5 for b in tickets.bars)
    assert all(b.y + b.height <= HEIGHT - BOTTOM + 0.5 for b in tickets.bars)
    # Cumulative: 40% then 100% then 80%, on a 0..100 scale whose 100 is at the top.
    ys = [float(p.split(",")[1]) for p in sold.line.split()]
    assert ys[0] > ys[1] > ys[2] and ys[3] > ys[2]
    assert tickets.marker is not None and sold.marker is not None and tickets.marker == sold.marker
    assert tickets.bars[1].x < tickets.marker[0] < tickets.bars[1].x + tickets.bars[1].width + 1
    assert "Sold out 10:01" in tickets.marker[1]


def test_without_a_capacity_there_is_no_sell_through() -> None:
    charts = sales_charts([window(0, 1, 100)], {"capacity": None})
    assert [c.key for c in charts] == ["tickets", "revenue"] and charts[0].marker is None
