"""Seat maps as SVG layouts, free of I/O: a venue's sections and rows, a coach seen from above.

The templates draw what these place; a seat's ``status`` (available, held, sold) colours it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

SEAT = 22
GAP = 6
PITCH = SEAT + GAP
ROW_LABEL = 28
SECTION_TITLE = 30


@dataclass(frozen=True, slots=True)
class PlacedSeat:
    id: str
    label: str
    status: str
    x: int
    y: int
    price: int | None = None
    section: str = ""


@dataclass(frozen=True, slots=True)
class RowLabel:
    text: str
    x: int
    y: int


@dataclass(slots=True)
class SeatMapLayout:
    width: int
    height: int
    seats: list[PlacedSeat] = field(default_factory=list)
    labels: list[RowLabel] = field(default_factory=list)
    titles: list[RowLabel] = field(default_factory=list)


class SeatLike(Protocol):
    """A seat as a seat map needs it (catalog's event seats and coach seats both are)."""

    @property
    def id(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def status(self) -> str: ...


class VenueSeatLike(SeatLike, Protocol):
    @property
    def section_id(self) -> str: ...
    @property
    def row(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def price(self) -> int | None: ...


class SectionLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


def layout_venue(sections: Sequence[SectionLike], seats: Sequence[VenueSeatLike]) -> SeatMapLayout:
    """Sections one below the other, each row a line of seats in number order, rows in the catalog's order."""
    by_section: dict[str, dict[str, list[VenueSeatLike]]] = {}
    for seat in seats:
        by_section.setdefault(seat.section_id, {}).setdefault(str(seat.row), []).append(seat)
    names = {s.id: s.name for s in sections}
    widest = max((len(row) for rows in by_section.values() for row in rows.values()), default=1)
    width = ROW_LABEL * 2 + widest * PITCH
    layout = SeatMapLayout(width=width, height=0)
    y = 0
    for section_id in [s.id for s in sections if s.id in by_section]:
        rows = by_section[section_id]
        layout.titles.append(RowLabel(names.get(section_id, ""), width // 2, y + 20))
        y += SECTION_TITLE
        for row_label, row in rows.items():
            ordered = sorted(row, key=lambda s: s.number)
            offset = ROW_LABEL + (widest - len(ordered)) * PITCH // 2
            layout.labels.append(RowLabel(row_label, ROW_LABEL // 2, y + SEAT - 6))
            for index, seat in enumerate(ordered):
                layout.seats.append(
                    PlacedSeat(
                        id=seat.id,
                        label=seat.label,
                        status=seat.status,
                        x=offset + index * PITCH,
                        y=y,
                        price=seat.price,
                        section=names.get(section_id, ""),
                    )
                )
            y += PITCH
        y += GAP * 2
    layout.height = max(y, PITCH)
    return layout


def layout_coach(seats: Sequence[SeatLike], *, per_column: int = 4) -> SeatMapLayout:
    """A coach seen from above: seats in columns of ``per_column`` across, an aisle down the middle."""
    columns = max(1, -(-len(seats) // per_column))
    aisle = PITCH // 2
    width = ROW_LABEL + columns * PITCH + GAP
    height = per_column * PITCH + aisle + GAP
    layout = SeatMapLayout(width=width, height=height)
    for index, seat in enumerate(seats):
        column, place = divmod(index, per_column)
        y = GAP + place * PITCH + (aisle if place >= per_column // 2 else 0)
        layout.seats.append(
            PlacedSeat(id=seat.id, label=seat.label, status=seat.status,
                       x=ROW_LABEL + column * PITCH, y=y)
        )
    return layout


def unavailable_seats(seats: Iterable[SeatLike]) -> dict[str, str]:
    return {s.id: s.status for s in seats if s.status != "available"}
