"""Demo data: events in every category at real venues (their addresses, time zones and capacities), Indian and
European stations (with their zones) and trains, 30 days of daily runs. docs/demo-data.md says what is scaled.

``seed_demo`` adds what is missing and nothing else, so it can run on every start: events only when the
catalog has none (events have no natural key), stations by code, trains by number, runs by (train, date).
Everything goes in ONE transaction that first takes the seed lock: on PostgreSQL an advisory lock, on
SQLite the write lock that ``BEGIN IMMEDIATE`` takes. Two processes starting at once therefore seed once:
the second waits, then finds everything there. Rows are written with one bulk insert per table and train.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from boxoffice.catalog import domain, handlers, store, timetable
from boxoffice.catalog.demo_details import demo_details
from boxoffice.catalog.deps import CatalogDeps
from boxoffice.catalog.domain import Category, EventDraft, RowDraft, SectionDraft, Station
from boxoffice.catalog.timetable import FareRule, Stop, TrainClass, TrainLayout
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.db import UnitOfWork

RUN_DAYS = 30
SEED_LOCK = zlib.crc32(b"boxoffice-catalog-demo-seed")

# Sections: (name, price offset from the event's base price, capacity) for general admission, or (name, price
# offset, rows, seats per row) for a reserved seat map.
GA = tuple[str, int, int]
RESERVED = tuple[str, int, str, int]


@dataclass(frozen=True, slots=True)
class DemoVenue:
    name: str
    city: str
    address: str
    timezone: str
    general: tuple[GA, ...] = ()
    reserved: tuple[RESERVED, ...] = ()


# Real venues with their addresses and time zones. General-admission capacities are the venues' own
# (Ziggo Dome 17,000; Paradiso 1,500); a seat map lists every seat of a theatre or a club. Seat maps of
# stadiums and big halls are scaled down to the blocks this shop sells (every seat of a map travels in
# one catalog.event-published event): docs/demo-data.md lists which.
VENUES: dict[str, DemoVenue] = {v.name: v for v in (
    DemoVenue("Ziggo Dome", "Amsterdam", "De Passage 100, 1101 AX Amsterdam", "Europe/Amsterdam",
              general=(("Floor", 0, 11_000), ("Tribune", 1_500, 6_000))),
    DemoVenue("Paradiso", "Amsterdam", "Weteringschans 6-8, 1017 SG Amsterdam", "Europe/Amsterdam",
              general=(("Main hall", 0, 1_500),)),
    DemoVenue("Philharmonie", "Berlin", "Herbert-von-Karajan-Strasse 1, 10785 Berlin", "Europe/Berlin",
              reserved=(("Block A", 3_000, "ABCDEFGHJK", 24), ("Block B", 1_500, "ABCDEFGH", 20))),
    DemoVenue("Columbiahalle", "Berlin", "Columbiadamm 13-21, 10965 Berlin", "Europe/Berlin",
              general=(("Standing", 0, 3_500),)),
    DemoVenue("Jawaharlal Nehru Stadium", "New Delhi", "Lodhi Road, Pragati Vihar, New Delhi 110003",
              "Asia/Kolkata", general=(("Gold circle", 250_000, 5_000), ("Silver", 100_000, 20_000),
                                       ("East stand", 0, 35_000))),
    DemoVenue("Blue Note", "Milan", "Via Pietro Borsieri 37, 20159 Milano", "Europe/Rome",
              reserved=(("Tables", 1_000, "ABCDEFGHJK", 20), ("Bar", 0, "ABC", 16))),
    DemoVenue("Royal Lyceum Theatre", "Edinburgh", "30b Grindlay Street, Edinburgh EH3 9AX", "Europe/London",
              reserved=(("Stalls", 1_500, "ABCDEFGHJKLMNOPQ", 24), ("Dress Circle", 800, "ABCDEFGH", 22),
                        ("Upper Circle", 0, "ABCDEF", 16))),
    DemoVenue("Theatre du Chatelet", "Paris", "1 Place du Chatelet, 75001 Paris", "Europe/Paris",
              reserved=(("Orchestre", 2_500, "ABCDEFGHJKLMNOPQRSTU", 30), ("Balcon", 1_000, "ABCDEFGHJK", 28),
                        ("Galerie", 0, "ABCDEFGH", 24))),
    DemoVenue("Internationaal Theater Amsterdam", "Amsterdam", "Leidseplein 26, 1017 PT Amsterdam",
              "Europe/Amsterdam", reserved=(("Stalls", 1_500, "ABCDEFGHJKLMN", 26), ("Balcony", 0, "ABCDEFG", 24))),
    DemoVenue("Jamshed Bhabha Theatre, NCPA", "Mumbai", "NCPA Marg, Nariman Point, Mumbai 400021", "Asia/Kolkata",
              reserved=(("Stalls", 100_000, "ABCDEFGHJKLMNOPQRSTU", 34), ("Balcony", 0, "ABCDEFGHJKLM", 30))),
    DemoVenue("Boom Chicago", "Amsterdam", "Rozengracht 117, 1016 LV Amsterdam", "Europe/Amsterdam",
              reserved=(("Main stage", 0, "ABCDEFGHJK", 30),)),
    DemoVenue("Quatsch Comedy Club", "Berlin", "Friedrichstrasse 107, 10117 Berlin", "Europe/Berlin",
              reserved=(("Parkett", 0, "ABCDEFGHJK", 30),)),
    DemoVenue("Canvas Laugh Club", "Mumbai", "Palladium Mall, Lower Parel, Mumbai 400013", "Asia/Kolkata",
              general=(("Seating", 0, 250),)),
    DemoVenue("Le Point Virgule", "Paris", "7 Rue Sainte-Croix de la Bretonnerie, 75004 Paris", "Europe/Paris",
              reserved=(("Salle", 0, "ABCDEFGHJK", 12),)),
    DemoVenue("Johan Cruijff ArenA", "Amsterdam", "Johan Cruijff Boulevard 1, 1101 DS Amsterdam",
              "Europe/Amsterdam", reserved=(("Block 112", 0, "ABCDEFGHJKLMNOPQRSTU", 40),
                                            ("Block 113", 0, "ABCDEFGHJKLMNOPQRSTU", 40),
                                            ("Business seats", 9_000, "ABCD", 20))),
    DemoVenue("Wankhede Stadium", "Mumbai", "D Road, Churchgate, Mumbai 400020", "Asia/Kolkata",
              reserved=(("Sunil Gavaskar Stand", 0, "ABCDEFGHJKLMNOPQRSTU", 50),
                        ("Garware Pavilion", 300_000, "ABCDEFGHJK", 30))),
    DemoVenue("Uber Arena", "Berlin", "Uber-Platz 1, 10243 Berlin", "Europe/Berlin",
              general=(("Arena floor", 0, 9_000), ("Tiers", 1_500, 5_000))),
    DemoVenue("Palau Blaugrana", "Barcelona", "Avinguda de Joan XXIII s/n, 08028 Barcelona", "Europe/Madrid",
              reserved=(("Lateral", 1_500, "ABCDEFGHJKLMNOPQ", 40), ("Gol", 0, "ABCDEFGHJKLMNOPQ", 30))),
    DemoVenue("Walibi Holland", "Biddinghuizen", "Spijkweg 30, 8256 RJ Biddinghuizen", "Europe/Amsterdam",
              general=(("Day pass", 0, 40_000), ("VIP", 9_000, 1_500))),
    DemoVenue("Vagator Beach", "Goa", "Vagator, Bardez, Goa 403509", "Asia/Kolkata",
              general=(("General access", 0, 40_000), ("VIP", 450_000, 2_000))),
    DemoVenue("Parc del Forum", "Barcelona", "Rambla del Prim 2-4, 08019 Barcelona", "Europe/Madrid",
              general=(("Day pass", 0, 50_000), ("Primavera Pro", 6_000, 1_000))),
    DemoVenue("Flagey", "Brussels", "Place Sainte-Croix, 1050 Ixelles", "Europe/Brussels",
              reserved=(("Studio 4", 0, "ABCDEFGHJKLMNOPQ", 30),)),
)}

# (name, category, venue, currency, days ahead, local start time "HH:MM"): evenings for concerts and
# theatre, an afternoon for a day-night ODI, midday for festival gates.
EVENTS: list[tuple[str, Category, str, str, int, str]] = [
    ("Aurora Nights Live", "concert", "Ziggo Dome", "EUR", 5, "20:00"),
    ("The Lumineers Unplugged", "concert", "Paradiso", "EUR", 12, "20:30"),
    ("Symphony No. 9 - Berliner Abend", "concert", "Philharmonie", "EUR", 18, "20:00"),
    ("Indie Rooftop Sessions", "concert", "Columbiahalle", "EUR", 26, "19:30"),
    ("AR Rahman Live", "concert", "Jawaharlal Nehru Stadium", "INR", 33, "19:00"),
    ("Jazz at Blue Note", "concert", "Blue Note", "EUR", 9, "21:00"),
    ("Hamlet", "theatre", "Royal Lyceum Theatre", "GBP", 7, "19:30"),
    ("Les Miserables", "theatre", "Theatre du Chatelet", "EUR", 15, "19:30"),
    ("The Mousetrap", "theatre", "Internationaal Theater Amsterdam", "EUR", 21, "20:15"),
    ("Mughal-e-Azam: The Musical", "theatre", "Jamshed Bhabha Theatre, NCPA", "INR", 28, "19:30"),
    ("Late Night Laughs", "comedy", "Boom Chicago", "EUR", 4, "22:00"),
    ("Stand-up Showcase", "comedy", "Quatsch Comedy Club", "EUR", 11, "20:00"),
    ("Comedy Central Live", "comedy", "Canvas Laugh Club", "INR", 19, "21:00"),
    ("Improv Marathon", "comedy", "Le Point Virgule", "EUR", 24, "20:30"),
    ("Ajax vs PSV", "sports", "Johan Cruijff ArenA", "EUR", 6, "16:45"),
    ("India vs Australia - ODI", "sports", "Wankhede Stadium", "INR", 16, "13:30"),
    ("ISTAF Indoor Athletics", "sports", "Uber Arena", "EUR", 30, "18:00"),
    ("Barca vs Real Madrid - Liga Endesa", "sports", "Palau Blaugrana", "EUR", 40, "18:30"),
    ("Lowlands Winter Edition", "festival", "Walibi Holland", "EUR", 22, "12:00"),
    ("Sunburn Goa", "festival", "Vagator Beach", "INR", 35, "16:00"),
    ("Primavera Weekender", "festival", "Parc del Forum", "EUR", 45, "17:00"),
    ("Jazz Fest Brussels", "festival", "Flagey", "EUR", 50, "14:00"),
]


def _sections(venue: DemoVenue, price: int) -> tuple[SectionDraft, ...]:
    if venue.general:
        return tuple(SectionDraft(name, price + extra, capacity=capacity) for name, extra, capacity in venue.general)
    return tuple(
        SectionDraft(name, price + extra, rows=tuple(RowDraft(label, seats) for label in labels))
        for name, extra, labels, seats in venue.reserved
    )


def demo_events(now: datetime) -> list[EventDraft]:
    drafts = []
    for i, (name, category, venue_name, currency, days, at) in enumerate(EVENTS):
        venue = VENUES[venue_name]
        price = (150_000 + 50_000 * (i % 5)) if currency == "INR" else 2_500 + 500 * (i % 7)
        hour, minute = (int(part) for part in at.split(":"))
        day = (now.astimezone(ZoneInfo(venue.timezone)) + timedelta(days=days)).date()
        starts_at = datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(venue.timezone)).astimezone(UTC)
        details = demo_details(i, name, category, venue.name, venue.city, starts_at)
        if venue.address:
            details = replace(details, venue_address=venue.address)
        drafts.append(
            EventDraft(name, category, venue.name, venue.city, starts_at, currency, _sections(venue, price),
                       details=details, timezone=venue.timezone, address=venue.address)
        )
    return drafts


INDIA, PARIS, BRUSSELS, NETHERLANDS = "Asia/Kolkata", "Europe/Paris", "Europe/Brussels", "Europe/Amsterdam"
STATIONS = [
    ("NDLS", "New Delhi", "New Delhi", INDIA), ("KOTA", "Kota Junction", "Kota", INDIA),
    ("RTM", "Ratlam Junction", "Ratlam", INDIA), ("BRC", "Vadodara Junction", "Vadodara", INDIA),
    ("ST", "Surat", "Surat", INDIA), ("BCT", "Mumbai Central", "Mumbai", INDIA),
    ("CNB", "Kanpur Central", "Kanpur", INDIA), ("PRYJ", "Prayagraj Junction", "Prayagraj", INDIA),
    ("DDU", "Pt. Deen Dayal Upadhyaya Junction", "Mughalsarai", INDIA), ("HWH", "Howrah Junction", "Kolkata", INDIA),
    ("AGC", "Agra Cantt", "Agra", INDIA), ("BPL", "Bhopal Junction", "Bhopal", INDIA),
    ("NGP", "Nagpur Junction", "Nagpur", INDIA), ("MAS", "Chennai Central", "Chennai", INDIA),
    ("LKO", "Lucknow Charbagh", "Lucknow", INDIA),
    ("PNO", "Paris Nord", "Paris", PARIS), ("BMI", "Bruxelles-Midi", "Brussels", BRUSSELS),
    ("RTD", "Rotterdam Centraal", "Rotterdam", NETHERLANDS), ("AMS", "Amsterdam Centraal", "Amsterdam", NETHERLANDS),
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
    known = await store.station_codes(uow.conn, [code for code, *_ in STATIONS])
    new_stations = [Station(c, n, city, zone) for c, n, city, zone in STATIONS if c not in known]
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
