"""Seat maps as SVG layouts, free of I/O: a venue's sections and rows, a coach seen from above.

The templates draw what these place. Every seat shows its number; a venue seat's colour is its section's
(``tone`` ``s0``..``s5``, with the section's price in the legend), a coach place says what it is: a berth
(lower, middle, upper, side) in sleeper classes, a window or aisle seat in chair cars. A seat's ``status``
(available, held, sold) is drawn on top of that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

SEAT = 26
GAP = 6
PITCH = SEAT + GAP
ROW_LABEL = 28
SECTION_TITLE = 30
SECTION_TONES = 6  # colours in the stylesheet: .s0 .. .s5, reused past six sections

# Coaches: a berth is a wide cell; a chair-car seat a square one with room for its note.
BERTH_W, BERTH_H = 50, 24
CHAIR = 30
CHAIR_PITCH = CHAIR + GAP
EDGE = 10  # coach wall to the first place

# Indian Railways' berth order within a bay (berth 1 is the lower berth of the first bay).
BERTH_PATTERNS: dict[str, tuple[str, ...]] = {
    "SL": ("LB", "MB", "UB", "LB", "MB", "UB", "SL", "SU"),
    "3A": ("LB", "MB", "UB", "LB", "MB", "UB", "SL", "SU"),
    "3E": ("LB", "MB", "UB", "LB", "MB", "UB", "SL", "SU"),
    "2A": ("LB", "UB", "LB", "UB", "SL", "SU"),
    "1A": ("LB", "UB", "LB", "UB"),
}
BERTH_NAMES = {"LB": "lower berth", "MB": "middle berth", "UB": "upper berth", "SL": "side lower berth",
               "SU": "side upper berth"}
# Seats across a chair car and where its aisle is: (left of the aisle, right of it).
CHAIR_PATTERNS: dict[str, tuple[int, int]] = {"CC": (3, 2), "EC": (2, 2), "FIRST": (2, 1), "STANDARD": (2, 2)}
DEFAULT_CHAIRS = (2, 2)


@dataclass(frozen=True, slots=True)
class PlacedSeat:
    id: str
    label: str
    status: str
    x: int
    y: int
    price: int | None = None
    section: str = ""
    number: str = ""  # what is written on the seat
    note: str = ""  # under the number: "LB", "W"
    tone: str = ""  # a colour class: the section's (s0..s5)
    description: str = ""  # for screen readers and the tooltip: "window seat", "lower berth"
    w: int = SEAT
    h: int = SEAT


@dataclass(frozen=True, slots=True)
class RowLabel:
    text: str
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class Shape:
    """A part of the drawing that is not a seat: a coach's wall, a window, a bay's partition."""

    kind: str
    x: int
    y: int
    w: int
    h: int


@dataclass(slots=True)
class SeatMapLayout:
    width: int
    height: int
    seats: list[PlacedSeat] = field(default_factory=list)
    labels: list[RowLabel] = field(default_factory=list)
    titles: list[RowLabel] = field(default_factory=list)
    shapes: list[Shape] = field(default_factory=list)
    kind: str = "venue"  # "venue" | "berths" | "chairs"


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


def section_tones(sections: Sequence[SectionLike]) -> dict[str, str]:
    """Each section's colour class, in the catalog's order of sections (the legend uses the same)."""
    return {s.id: f"s{i % SECTION_TONES}" for i, s in enumerate(sections)}


def layout_venue(sections: Sequence[SectionLike], seats: Sequence[VenueSeatLike]) -> SeatMapLayout:
    """Sections one below the other, each row a line of seats in number order, rows in the catalog's order.

    Row letters stand at both ends of a row, so a phone that scrolls the map sideways still shows them.
    """
    by_section: dict[str, dict[str, list[VenueSeatLike]]] = {}
    for seat in seats:
        by_section.setdefault(seat.section_id, {}).setdefault(str(seat.row), []).append(seat)
    names = {s.id: s.name for s in sections}
    tones = section_tones(sections)
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
            layout.labels.append(RowLabel(row_label, ROW_LABEL // 2, y + SEAT - 8))
            layout.labels.append(RowLabel(row_label, width - ROW_LABEL // 2, y + SEAT - 8))
            for index, seat in enumerate(ordered):
                layout.seats.append(
                    PlacedSeat(
                        id=seat.id, label=seat.label, status=seat.status, x=offset + index * PITCH, y=y,
                        price=seat.price, section=names.get(section_id, ""), number=str(seat.number),
                        tone=tones.get(section_id, ""),
                    )
                )
            y += PITCH
        y += GAP * 2
    layout.height = max(y, PITCH)
    return layout


def seat_number(label: str, index: int) -> int:
    """A coach seat's number: the one its label ends with ("B1-12" → 12), else its place in the coach."""
    match = re.search(r"(\d+)$", label)
    return int(match.group(1)) if match else index + 1


def layout_coach(seats: Sequence[SeatLike], class_code: str = "") -> SeatMapLayout:
    """A coach seen from above, drawn as its class is built: berths in bays, or rows of seats."""
    pattern = BERTH_PATTERNS.get(class_code.upper())
    if pattern is not None:
        return _berths(seats, pattern)
    return _chairs(seats, CHAIR_PATTERNS.get(class_code.upper(), DEFAULT_CHAIRS))


def _berths(seats: Sequence[SeatLike], pattern: tuple[str, ...]) -> SeatMapLayout:
    """Bays along the coach: two facing benches of stacked berths by the window, the aisle, then the side
    berths along the other wall (as the numbering runs: berth 1 is the first bay's lower berth)."""
    per_bay = len(pattern)
    main = [p for p in pattern if p not in ("SL", "SU")]
    stack = len(main) // 2  # berths one above the other on a bench
    has_side = per_bay > len(main)
    bay_w = 2 * BERTH_W + GAP + 3 * GAP
    aisle = 22
    benches = stack * (BERTH_H + 4) - 4
    side_y = EDGE + benches + aisle
    height = (side_y + BERTH_H if has_side else EDGE + benches) + EDGE
    numbers = [seat_number(seat.label, index) for index, seat in enumerate(seats)]
    bays = max(1, -(-max(numbers, default=1) // per_bay))
    width = EDGE * 2 + bays * bay_w - 3 * GAP
    layout = SeatMapLayout(width=width, height=height, kind="berths")
    layout.shapes.append(Shape("coach", 0, 0, width, height))
    for seat, number in zip(seats, numbers, strict=True):
        bay, place = divmod(number - 1, per_bay)
        kind = pattern[place]
        left = EDGE + bay * bay_w
        if kind in ("SL", "SU"):
            x, y = left + (0 if kind == "SL" else BERTH_W + GAP), side_y
        else:
            bench, level = divmod(place, stack)  # levels: 0 lower .. stack-1 upper; drawn upper first
            x, y = left + bench * (BERTH_W + GAP), EDGE + (stack - 1 - level) * (BERTH_H + 4)
        layout.seats.append(PlacedSeat(
            id=seat.id, label=seat.label, status=seat.status, x=x, y=y, number=str(number), note=kind,
            description=BERTH_NAMES[kind], w=BERTH_W, h=BERTH_H,
        ))
    for bay in range(1, bays):
        layout.shapes.append(Shape("partition", EDGE + bay * bay_w - 2 * GAP, 4, 2, benches + EDGE))
    return layout


def _chairs(seats: Sequence[SeatLike], across: tuple[int, int]) -> SeatMapLayout:
    """Rows across the coach, the aisle between the two blocks; windows along both walls."""
    left, right = across
    per_row = left + right
    aisle = 18
    numbers = [seat_number(seat.label, index) for index, seat in enumerate(seats)]
    rows = max(1, -(-max(numbers, default=1) // per_row))
    width = EDGE * 2 + rows * CHAIR_PITCH - GAP
    height = EDGE * 2 + per_row * CHAIR_PITCH + aisle - GAP
    layout = SeatMapLayout(width=width, height=height, kind="chairs")
    layout.shapes.append(Shape("coach", 0, 0, width, height))
    layout.shapes.append(Shape("window", EDGE, 0, width - 2 * EDGE, 4))
    layout.shapes.append(Shape("window", EDGE, height - 4, width - 2 * EDGE, 4))
    for seat, number in zip(seats, numbers, strict=True):
        row, place = divmod(number - 1, per_row)
        window = place in (0, per_row - 1)
        y = EDGE + place * CHAIR_PITCH + (aisle if place >= left else 0)
        layout.seats.append(PlacedSeat(
            id=seat.id, label=seat.label, status=seat.status, x=EDGE + row * CHAIR_PITCH, y=y, number=str(number),
            note="W" if window else "", description="window seat" if window else "aisle seat" if
            place in (left - 1, left) else "middle seat", w=CHAIR, h=CHAIR,
        ))
    return layout


def unavailable_seats(seats: Iterable[SeatLike]) -> dict[str, str]:
    return {s.id: s.status for s in seats if s.status != "available"}
