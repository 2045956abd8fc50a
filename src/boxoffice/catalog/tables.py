"""Catalog's tables (with the outbox and inbox), for the store's queries and for Alembic.

Events keep ``price_from`` and ``capacity`` next to their sections so a listing is one indexed query.
Train seats belong to the train, not to a run: a seat id is the same on every run of the train, and
booking keys train inventory by ``(run_id, seat_id)``.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

from boxoffice.platform.bus.tables import add_messaging_tables
from boxoffice.platform.db import UtcDateTime

metadata = MetaData()

venues = Table(
    "venues",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("city", String(100), nullable=False),
    Column("timezone", String(64), nullable=False, server_default="UTC"),  # IANA, e.g. Europe/Amsterdam
    Column("address", String(300), nullable=True),
    UniqueConstraint("name", "city", name="uq_venues_name_city"),
)

events = Table(
    "events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("category", String(20), nullable=False),
    Column("venue_id", String(36), ForeignKey("venues.id"), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("seating", String(10), nullable=False),
    Column("price_from", Integer, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("on_sale_at", UtcDateTime, nullable=True),  # a queued sale (waiting room) opens then
    Column("admit_per_minute", Integer, nullable=True),
    # What the event page shows beyond the listing (all optional).
    Column("description", Text, nullable=True),
    Column("image_url", String(500), nullable=True),
    Column("doors_at", UtcDateTime, nullable=True),
    Column("venue_address", String(300), nullable=True),
    Index("ix_events_starts_at_id", "starts_at", "id"),
    Index("ix_events_category_starts_at", "category", "starts_at"),
)

sections = Table(
    "sections",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(36), ForeignKey("events.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(100), nullable=False),
    Column("price", Integer, nullable=False),
    Column("capacity", Integer, nullable=False),
    Index("ix_sections_event_id", "event_id"),
)

seats = Table(
    "seats",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(36), ForeignKey("events.id"), nullable=False),
    Column("section_id", String(36), ForeignKey("sections.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("row", String(10), nullable=False),
    Column("number", Integer, nullable=False),
    Column("label", String(30), nullable=False),
    Column("price", Integer, nullable=False),
    Index("ix_seats_event_id", "event_id"),
)

stations = Table(
    "stations",
    metadata,
    Column("code", String(8), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("city", String(100), nullable=False),
    Column("timezone", String(64), nullable=False, server_default="UTC"),  # IANA, e.g. Asia/Kolkata
)

trains = Table(
    "trains",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("number", String(20), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("departure_minute", Integer, nullable=False),  # UTC minute of the day the first stop is left
    Column("created_at", UtcDateTime, nullable=False),
)

train_stops = Table(
    "train_stops",
    metadata,
    Column("train_id", String(36), ForeignKey("trains.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("station", String(8), ForeignKey("stations.code"), nullable=False),
    Column("arrival_minutes", Integer, nullable=True),
    Column("departure_minutes", Integer, nullable=True),
    Column("distance_km", Integer, nullable=False),
    Index("ix_train_stops_station", "station"),
)

train_classes = Table(
    "train_classes",
    metadata,
    Column("train_id", String(36), ForeignKey("trains.id"), primary_key=True),
    Column("code", String(10), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("name", String(100), nullable=False),
    Column("base_fare", Integer, nullable=False),
    Column("per_km_fare", Integer, nullable=False),
)

coaches = Table(
    "coaches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("train_id", String(36), ForeignKey("trains.id"), nullable=False),
    Column("class_code", String(10), nullable=False),
    Column("position", Integer, nullable=False),
    Column("label", String(10), nullable=False),
    UniqueConstraint("train_id", "label", name="uq_coaches_train_label"),
)

coach_seats = Table(
    "coach_seats",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("train_id", String(36), ForeignKey("trains.id"), nullable=False),
    Column("coach_id", String(36), ForeignKey("coaches.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("label", String(20), nullable=False),
    Index("ix_coach_seats_train_id", "train_id"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("train_id", String(36), ForeignKey("trains.id"), nullable=False),
    Column("run_date", Date, nullable=False),
    Column("departs_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # A queued booking day (the waiting room's line opens then); admit_per_minute None: the rate adapts.
    Column("on_sale_at", UtcDateTime, nullable=True),
    Column("admit_per_minute", Integer, nullable=True),
    UniqueConstraint("train_id", "run_date", name="uq_runs_train_date"),
    Index("ix_runs_run_date", "run_date"),
)

outbox, inbox = add_messaging_tables(metadata)
