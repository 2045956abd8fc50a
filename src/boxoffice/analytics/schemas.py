"""Analytics' response models (ARCHITECTURE.md section 5, "Analytics")."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from boxoffice.analytics.domain import WindowResult
from boxoffice.analytics.handlers import SalesPage, Summary, Tracked
from boxoffice.platform import pagination


class SalesWindowOut(BaseModel):
    window_start: datetime
    window_end: datetime
    total_tickets: int
    orders: int
    revenue_minor: int
    currency: str
    revision: int

    @classmethod
    def of(cls, result: WindowResult) -> SalesWindowOut:
        return cls(
            window_start=result.window_start,
            window_end=result.window_end,
            total_tickets=result.total_tickets,
            orders=result.orders,
            revenue_minor=result.revenue_minor,
            currency=result.currency,
            revision=result.revision,
        )


class SalesOut(BaseModel):
    items: list[SalesWindowOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: SalesPage) -> SalesOut:
        cursor = pagination.encode_cursor(page.next_cursor) if page.next_cursor else None
        return cls(items=[SalesWindowOut.of(r) for r in page.items], next_cursor=cursor)


class SummaryOut(BaseModel):
    event_id: str
    capacity: int | None
    sold: int
    sell_through: float | None
    """sold / capacity (0.5 is half sold); null while the catalog has not announced the capacity."""
    revenue_minor: int
    currency: str | None
    first_sale_at: datetime | None
    sold_out_at: datetime | None
    peak_tickets_per_minute: float

    @classmethod
    def of(cls, summary: Summary) -> SummaryOut:
        return cls(
            event_id=summary.event_id,
            capacity=summary.capacity,
            sold=summary.sold,
            sell_through=summary.sell_through,
            revenue_minor=summary.revenue_minor,
            currency=summary.currency,
            first_sale_at=summary.first_sale_at,
            sold_out_at=summary.sold_out_at,
            peak_tickets_per_minute=summary.peak_tickets_per_minute,
        )


class TrackedOut(BaseModel):
    event_id: str
    kind: str
    name: str
    capacity: int
    starts_at: datetime | None
    sold: int

    @classmethod
    def of(cls, item: Tracked) -> TrackedOut:
        return cls(
            event_id=item.event_id,
            kind=item.kind,
            name=item.name,
            capacity=item.capacity,
            starts_at=item.starts_at,
            sold=item.sold,
        )


class TrackedList(BaseModel):
    items: list[TrackedOut]
    next_cursor: str | None = None
