"""Demo data: events in every category, Indian and European stations and trains, 30 days of daily runs.

``seed_demo`` adds what is missing and nothing else, so it can run on every start: events only when the
catalog has none (events have no natural key), stations by code, trains by number, runs by (train, date).
Everything goes in ONE transaction that first takes the seed lock: on PostgreSQL an advisory lock, on
SQLite the write lock that ``BEGIN IMMEDIATE`` takes. Two processes starting at once therefore seed once:
the second waits, then finds everything there. Rows are written with one bulk insert per table and train.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

from boxoffice.catalog import domain, handlers, store, timetable
from boxoffice.catalog.demo_details import demo_details
from boxoffice.catalog.deps import CatalogDeps
from boxoffice.catalog.domain import Category, EventDraft, RowDraft, SectionDraft, Station
from boxoffice.catalog.timetable import FareRule, Stop, TrainClass, TrainLayout
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.db import UnitOfWork

RUN_DAYS = 30
SEED_LOCK = zlib.crc32(b"boxoffice-catalog-demo-seed")

# (name, category, venue, city, currency, days ahead, hour UTC, seating plan)
EVENTS: list[tuple[str, Category, str, str, str, int, int, str]] = [
    ("Aurora Nights Live", "concert", "Ziggo Dome", "Amsterdam", "EUR", 5, 19, "arena"),
    ("The Lumineers Unplugged", "concert", "Paradiso", "Amsterdam", "EUR", 12, 20, "club"),
    ("Symphony No. 9 - Berliner Abend", "concert", "Philharmonie", "Berlin", "EUR", 18, 18, "hall"),
    ("Indie Rooftop Sessions", "concert", "Columbiahalle", "Berlin", "EUR", 26, 19, "club"),
    ("AR Rahman Live", "concert", "Jawaharlal Nehru Stadium", "New Delhi", "INR", 33, 14, "stadium"),
    ("Jazz at Blue Note", "concert", "Blue Note", "Milan", "EUR", 9, 20, "club"),
    ("Hamlet", "theatre", "Royal Lyceum", "Edinburgh", "GBP", 7, 19, "theatre"),
    ("Les Miserables", "theatre", "Theatre du Chatelet", "Paris", "EUR", 15, 19, "theatre"),
    ("The Mousetrap", "theatre", "Stadsschouwburg", "Amsterdam", "EUR", 21, 19, "theatre"),
    ("Mughal-e-Azam: The Musical", "theatre", "NCPA", "Mumbai", "INR", 28, 13, "theatre"),
    ("Late Night Laughs", "comedy", "Boom Chicago", "Amsterdam", "EUR", 4, 21, "club"),
    ("Stand-up Showcase", "comedy", "Quatsch Comedy Club", "Berlin", "EUR", 11, 20, "club"),
    ("Comedy Central Live", "comedy", "Canvas Laugh Club", "Mumbai", "INR", 19, 15, "club"),
    ("Improv Marathon", "comedy", "Le Point Virgule", "Paris", "EUR", 24, 20, "theatre"),
    ("Ajax vs PSV", "sports", "Johan Cruijff ArenA", "Amsterdam", "EUR", 6, 18, "stadium"),
    ("India vs Australia - ODI", "sports", "Wankhede Stadium", "Mumbai", "INR", 16, 8, "stadium"),
    ("Berlin Marathon Grandstand", "sports", "Strasse des 17. Juni", "Berlin", "EUR", 30, 7, "arena"),
    ("Basketball Euroleague Final", "sports", "Palau Sant Jordi", "Barcelona", "EUR", 40, 18, "stadium"),
    ("Lowlands Winter Edition", "festival", "Walibi Holland", "Biddinghuizen", "EUR", 22, 12, "festival"),
    ("Sunburn Goa", "festival", "Vagator Beach", "Goa", "INR", 35, 10, "festival"),
    ("Primavera Weekender", "festival", "Parc del Forum", "Barcelona", "EUR", 45, 15, "festival"),
    ("Jazz Fest Brussels", "festival", "Flagey", "Brussels", "EUR", 50, 14, "festival"),
]


def _rows(labels: str, seats: int) -> tuple[RowDraft, ...]:
    return tuple(RowDraft(label, seats) for label in labels)


def _sections(plan: str, price: int) -> tuple[SectionDraft, ...]:
    """Seating plans: general admission (arena, club, festival) or reserved seat maps of 200+ seats."""
    if plan == "arena":
        return (SectionDraft("Floor", price, capacity=800), SectionDraft("Balcony", price + 2000, capacity=300))
    if plan == "club":
        return (SectionDraft("Standing", price, capacity=250),)
    if plan == "festival":
        return (SectionDraft("Day pass", price, capacity=5000), SectionDraft("VIP", price * 3, capacity=200))
    if plan == "theatre":
        return (
            SectionDraft("Stalls", price + 1500, rows=_rows("ABCDEFGHJK", 20)),
            SectionDraft("Circle", price, rows=_rows("ABCDE", 16)),
        )
    if plan == "hall":
        return (SectionDraft("Parterre", price + 3000, rows=_rows("ABCDEFGH", 24)),)
    return (  # stadium
        SectionDraft("North Stand", price, rows=_rows("ABCDEFGH", 25)),
        SectionDraft("VIP Box", price * 4, rows=_rows("AB", 10)),
    )


def demo_events(now: datetime) -> list[EventDraft]:
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    drafts = []
    for i, (name, category, venue, city, currency, days, hour, plan) in enumerate(EVENTS):
        price = (150_000 + 50_000 * (i % 5)) if currency == "INR" else 2_500 + 500 * (i % 7)
        starts_at = midnight + timedelta(days=days, hours=hour, minutes=30 * (i % 2))
        details = demo_details(i, name, category, venue, city, starts_at)
        drafts.append(EventDraft(name, category, venue, city, starts_at, currency, _sections(plan, price),
                                 details=details))
    return drafts


STATIONS = [
    ("NDLS", "New Delhi", "New Delhi"), ("KOTA", "Kota Junction", "Kota"), ("RTM", "Ratlam Junction", "Ratlam"),
    ("BRC", "Vadodara Junction", "Vadodara"), ("ST", "Surat", "Surat"), ("BCT", "Mumbai Central", "Mumbai"),
    ("CNB", "Kanpur Central", "Kanpur"), ("PRYJ", "Prayagraj Junction", "Prayagraj"),
    ("DDU", "Pt. Deen Dayal Upadhyaya Junction", "Mughalsarai"), ("HWH", "Howrah Junction", "Kolkata"),
    ("AGC", "Agra Cantt", "Agra"), ("BPL", "Bhopal Junction", "Bhopal"), ("NGP", "Nagpur Junction", "Nagpur"),
    ("MAS", "Chennai Central", "Chennai"), ("LKO", "Lucknow Charbagh", "Lucknow"),
    ("PNO", "Paris Nord", "Paris"), ("BMI", "Bruxelles-Midi", "Brussels"), ("RTD", "Rotterdam Centraal", "Rotterdam"),
    ("AMS", "Amsterdam Centraal", "Amsterdam"),
]

# Stops: (station, arrival minutes, departure minutes, km from the first stop).
StopSpec = tuple[str, int | None, int | None, int]
# Classes: (code, name, base fare, fare per km, [(coach label, seats)]).
ClassSpec = tuple[str, str, int, int, list[tuple[str, int]]]
RAJDHANI_CLASSES: list[ClassSpec] = [
    ("3A", "AC 3 Tier", 20_000, 180, [("B1", 64), ("B2", 64)]),
    ("2A", "AC 2 Tier", 30_000, 260, [("A1", 46)]),
    ("1A", "First Class AC", 50_000, 440, [("H1", 24)]),
]
TRAINS: list[tuple[str, str, str, int, list[StopSpec], list[ClassSpec]]] = [
    ("12952", "Mumbai Rajdhani Express", "INR", 11 * 60 + 25,
     [("NDLS", None, 0, 0), ("KOTA", 270, 280, 465), ("RTM", 455, 458, 733), ("BRC", 640, 650, 994),
      ("ST", 765, 768, 1123), ("BCT", 940, None, 1386)], RAJDHANI_CLASSES),
    ("12302", "Howrah Rajdhani Express", "INR", 11 * 60 + 20,
     [("NDLS", None, 0, 0), ("CNB", 290, 295, 440), ("PRYJ", 420, 422, 634), ("DDU", 540, 550, 787),
      ("HWH", 1035, None, 1451)], RAJDHANI_CLASSES),
    ("12622", "Tamil Nadu Express", "INR", 15 * 60 + 30,
     [("NDLS", None, 0, 0), ("AGC", 170, 175, 195), ("BPL", 530, 540, 701), ("NGP", 880, 890, 1091),
      ("MAS", 1970, None, 2182)],
     [("SL", "Sleeper", 5_000, 45, [("S1", 72), ("S2", 72)]), ("3A", "AC 3 Tier", 20_000, 120, [("B1", 64)]),
      ("2A", "AC 2 Tier", 30_000, 175, [("A1", 46)])]),
    ("12004", "Lucknow Swarna Shatabdi", "INR", 40,
     [("NDLS", None, 0, 0), ("CNB", 290, 295, 440), ("LKO", 380, None, 512)],
     [("CC", "AC Chair Car", 15_000, 150, [("C1", 78), ("C2", 78)]),
      ("EC", "Executive Chair Car", 30_000, 280, [("E1", 56)])]),
    ("9313", "Eurostar", "EUR", 8 * 60 + 13,
     [("PNO", None, 0, 0), ("BMI", 82, 90, 312), ("RTD", 163, 166, 460), ("AMS", 200, None, 535)],
     [("standard", "Standard", 2_900, 12, [("11", 76), ("12", 76)]), ("first", "First", 6_900, 25, [("1", 40)])]),
    ("9340", "Eurostar", "EUR", 15 * 60 + 17,
     [("AMS", None, 0, 0), ("RTD", 37, 40, 75), ("BMI", 115, 122, 223), ("PNO", 205, None, 535)],
     [("standard", "Standard", 2_900, 12, [("11", 76), ("12", 76)]), ("first", "First", 6_900, 25, [("1", 40)])]),
]


def demo_layout(number: str, name: str, currency: str, minute: int, stops: list[StopSpec],
                classes: list[ClassSpec]) -> TrainLayout:
    return TrainLayout(
        uuid7(), number, name, currency, minute, tuple(Stop(*s) for s in stops),
        tuple(
            TrainClass(code, cname, FareRule(base, per_km),
                       tuple(timetable.build_coach(uuid7, label, seats) for label, seats in coaches))
            for code, cname, base, per_km, coaches in classes
        ),
    )


async def _seed_trains(uow: UnitOfWork, now: datetime, counts: dict[str, int]) -> None:
    known = await store.station_codes(uow.conn, [code for code, _, _ in STATIONS])
    new_stations = [Station(c, n, city) for c, n, city in STATIONS if c not in known]
    await store.insert_stations(uow.conn, new_stations)
    counts["stations"] = len(new_stations)
    today = now.date()
    dates = [today + timedelta(days=i) for i in range(RUN_DAYS)]
    for spec in TRAINS:
        train_id = await store.train_id_by_number(uow.conn, spec[0])
        layout = await store.train_layout(uow.conn, train_id) if train_id else None
        if layout is None:
            layout = demo_layout(*spec)
            timetable.check_layout(layout)
            await handlers.add_train(uow, layout, now=now)
            counts["trains"] += 1
        existing = await store.run_dates_of(uow.conn, layout.id, dates)
        counts["runs"] += await handlers.add_runs(uow, layout, [d for d in dates if d not in existing], now=now)


async def seed_demo(deps: CatalogDeps) -> dict[str, int]:
    now = deps.now()
    counts = {"events": 0, "stations": 0, "trains": 0, "runs": 0}
    async with deps.db.uow() as uow:
        await store.take_seed_lock(uow.conn, SEED_LOCK)
        if await store.count_events(uow.conn) == 0:
            for draft in demo_events(now):
                domain.check_event_draft(draft, now=now)
                await handlers.add_event(uow, domain.plan_event(draft, uuid7), now=now)
                counts["events"] += 1
        await _seed_trains(uow, now, counts)
        await uow.commit()
    deps.cache.invalidate()
    return counts
