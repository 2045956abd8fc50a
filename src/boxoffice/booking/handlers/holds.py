"""Holds: a customer's claim on inventory for a few minutes, placed, read and released."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pydantic import JsonValue

from boxoffice.booking import catalog_copy, domain, inventory, store
from boxoffice.booking.deps import BookingDeps
from boxoffice.booking.domain import Event, Hold, HoldKind, HoldStatus, Item, Section, Segment
from boxoffice.booking.handlers.common import HOLDS, HOLDS_TOPIC, iso, owned_hold, record_hold
from boxoffice.booking.handlers.expiry import end_hold, expire_section_holds
from boxoffice.platform.admission import ADMISSION_HEADER, admitted
from boxoffice.platform.auth import Principal
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.db import UnitOfWork
from boxoffice.platform.idempotency import StoredResponse, run_idempotent


@dataclass(frozen=True, slots=True)
class PlaceHold:
    """One of: an event's section and a quantity; an event's seats; a train run's class and journey with a
    quantity or seats (the API checks which fields go together)."""

    event_id: str | None = None
    section_id: str | None = None
    quantity: int | None = None
    seat_ids: tuple[str, ...] = ()
    run_id: str | None = None
    class_code: str | None = None
    origin: str | None = None
    destination: str | None = None
    admission: str | None = None  # the waiting room's token (X-Admission), needed for a queued sale

    @property
    def requested(self) -> int:
        return len(self.seat_ids) or self.quantity or 0


@dataclass(frozen=True, slots=True)
class _Claim:
    """What a claim on inventory took: the hold's fields that depend on its kind."""

    kind: HoldKind
    event_id: str
    currency: str
    items: tuple[Item, ...]
    section_id: str | None = None
    class_code: str | None = None
    segment: Segment | None = None


async def place_hold(
    deps: BookingDeps,
    cmd: PlaceHold,
    *,
    user: Principal,
    idempotency_key: str | None,
    body: JsonValue,
    render: Callable[[Hold], JsonValue],
) -> StoredResponse:
    """Hold what ``cmd`` asks for; ``render`` gives the answer's JSON, stored with the Idempotency-Key."""

    started = time.perf_counter()  # the hold's latency inside booking, reported to the waiting room

    async def work(uow: UnitOfWork) -> JsonValue:
        return render(await _place(uow, deps, cmd, user, started))

    try:
        answer = await run_idempotent(
            deps.db, work, owner=user.id, scope="holds", key=idempotency_key, body=body, status_code=201, now=deps.now
        )
    except (domain.SoldOut, domain.SeatUnavailable, domain.LimitReached, domain.NotAdmitted) as refused:
        HOLDS.labels(refused.slug).inc()
        raise
    HOLDS.labels("placed").inc()
    return answer


async def _check_admission(
    uow: UnitOfWork, deps: BookingDeps, cmd: PlaceHold, user: Principal, now: datetime
) -> tuple[Event | None, Section | None]:
    """A queued sale (an event, or a train run's booking day) sells only to buyers the waiting room admitted:
    its signed token, for this sale and buyer. Returns the event (None for a train or an unknown event) and,
    for general admission, its section (None if the event has no such section), so that the claim does not
    read them again."""
    event = section = None
    if cmd.run_id is not None:
        run = await catalog_copy.run_of(uow.conn, cmd.run_id)
        sale_id, queued = cmd.run_id, run is not None and run.on_sale_at is not None
    elif cmd.event_id is not None:
        if cmd.section_id is not None:
            event, section = await catalog_copy.event_and_section(uow.conn, cmd.event_id, cmd.section_id)
        else:
            event = await catalog_copy.event_of(uow.conn, cmd.event_id)
        sale_id, queued = cmd.event_id, event is not None and event.on_sale_at is not None
    else:
        return None, None
    if queued and not admitted(deps.secret, cmd.admission, event_id=sale_id, user_id=user.id, now=now):
        raise domain.NotAdmitted(
            "This sale has a waiting room: join the line, and hold seats once you are admitted "
            f"(send the admission in the {ADMISSION_HEADER} header)."
        )
    return event, section


async def _place(uow: UnitOfWork, deps: BookingDeps, cmd: PlaceHold, user: Principal, started: float) -> Hold:
    now = deps.now()
    event, section = await _check_admission(uow, deps, cmd, user, now)
    hold_id = uuid7()
    expires_at = now + timedelta(seconds=deps.config.hold_ttl_seconds)
    # The customer's own lock first and the contended inventory row last, so that row stays locked
    # only for the claim and the commit.
    await store.lock_customer(uow.conn, user.id)
    active, tickets = await store.customer_usage(uow.conn, user.id, cmd.run_id or cmd.event_id or "", now)
    domain.check_limits(deps.limits, active_holds=active, tickets_for_event=tickets, requested=cmd.requested)
    claim = await _claim(uow, cmd, event, section, hold_id=hold_id, expires_at=expires_at, now=now)
    hold = Hold(
        id=hold_id,
        user_id=user.id,
        kind=claim.kind,
        event_id=claim.event_id,
        section_id=claim.section_id,
        quantity=len(claim.items),
        status=HoldStatus.ACTIVE,
        version=1,
        expires_at=expires_at,
        total=sum(item.price for item in claim.items),
        currency=claim.currency,
        items=claim.items,
        created_at=now,
        class_code=claim.class_code,
        segment=claim.segment,
    )
    await store.insert_hold(uow.conn, hold)
    detail = {"quantity": hold.quantity, "total": hold.total, "currency": hold.currency, "expires_at": iso(expires_at)}
    await record_hold(uow.conn, hold, "placed", actor=user.id, at=now, detail=detail)

    async def announce() -> None:  # at commit, after a general-admission claim (``_claim``)
        uow.publish(
            HOLDS_TOPIC,
            "booking.hold-placed",
            key=hold.event_id,
            data={
                "hold_id": hold_id,
                "user_id": user.id,
                "event_id": hold.event_id,
                "quantity": hold.quantity,
                "expires_at": expires_at.isoformat(),
                # From the request reaching the handler to the claim made (waiting for the database included):
                # the waiting room slows its admissions when this grows (docs/waiting-room.md).
                "latency_ms": round((time.perf_counter() - started) * 1000),
            },
        )

    uow.last(announce)
    return hold


async def _claim(
    uow: UnitOfWork,
    cmd: PlaceHold,
    event: Event | None,
    section: Section | None,
    *,
    hold_id: str,
    expires_at: datetime,
    now: datetime,
) -> _Claim:
    """Claim the inventory a hold asks for, or raise why not (the transaction then rolls back). ``event``:
    the event ``cmd.event_id`` names, as read in this transaction (None if there is none); ``section``: its
    section ``cmd.section_id``, read with it (None if the event has none of that id)."""
    if cmd.run_id is not None:
        return await _claim_train(uow, cmd, hold_id=hold_id, expires_at=expires_at, now=now)
    if event is None:
        raise domain.UnknownInventory("This event is not on sale (yet).")
    if cmd.seat_ids:
        seat_ids = list(cmd.seat_ids)
        seats = await inventory.seats_for(uow.conn, event.event_id, seat_ids)
        await inventory.claim_seats(uow.conn, event.event_id, seat_ids, hold_id=hold_id, expires_at=expires_at, now=now)
        names = await catalog_copy.section_names(uow.conn, event.event_id)
        items = tuple(Item(s.seat_id, s.label, s.price, names[s.section_id or ""]) for s in seats)
        section_id = seats[0].section_id if len({s.section_id for s in seats}) == 1 else None
        return _Claim(HoldKind.SEATS, event.event_id, event.currency, items, section_id=section_id)
    if section is None or section.event_id != event.event_id:
        raise domain.InvalidSelection("This section does not exist at this event.")
    if event.seating == "reserved":
        raise domain.InvalidSelection("This event has reserved seating: choose seats (seat_ids).")
    quantity = cmd.quantity or 0

    async def claim() -> None:
        try:
            await inventory.claim_general(uow.conn, section.section_id, quantity)
        except domain.SoldOut:
            # Expired holds count as free at once (invariant 3): give theirs back, then try once more.
            if not await expire_section_holds(uow, section.section_id, now):
                raise
            await inventory.claim_general(uow.conn, section.section_id, quantity)

    # The section's row is the sale's hottest: claimed at commit, after the hold's other rows, so that
    # PostgreSQL keeps it locked for the claim, the hold's event and the COMMIT only (``UnitOfWork.last``).
    # Sold out, the claim raises there and the hold is rolled back with everything else.
    uow.last(claim)
    items = (Item(None, section.name, section.price, section.name),) * quantity
    return _Claim(HoldKind.GENERAL, event.event_id, event.currency, items, section_id=section.section_id)


async def _claim_train(uow: UnitOfWork, cmd: PlaceHold, *, hold_id: str, expires_at: datetime, now: datetime) -> _Claim:
    conn = uow.conn
    run = await catalog_copy.run_of(conn, cmd.run_id or "")
    if run is None:
        raise domain.UnknownInventory("This train run is not on sale (yet).")
    class_code = cmd.class_code or ""
    if class_code not in run.fares:
        raise domain.InvalidSelection(f"This train has no class {cmd.class_code}.")
    segment = domain.segment_of(run.stops, cmd.origin or "", cmd.destination or "")
    fare = domain.fare_for(run.fares[class_code], segment)
    if cmd.seat_ids:
        seat_ids = sorted(set(cmd.seat_ids))
        await inventory.lock_train_seats(conn, run.run_id, seat_ids)
        seats = await inventory.train_seats_of(conn, run.run_id, class_code, seat_ids)
    else:
        wanted = cmd.quantity or 0
        seats = await inventory.free_train_seats(conn, run.run_id, class_code, segment, now, wanted)
        if len(seats) < wanted:
            raise domain.SoldOut("Not enough seats are left in this class for this journey.")
        seat_ids = [seat.seat_id for seat in seats]
        await inventory.lock_train_seats(conn, run.run_id, seat_ids)
    await inventory.claim_train_seats(
        conn, run.run_id, seat_ids, segment, hold_id=hold_id, expires_at=expires_at, now=now
    )
    section = run.class_names.get(class_code, class_code)
    items = tuple(Item(s.seat_id, s.label, fare, section) for s in sorted(seats, key=lambda s: s.seat_id))
    return _Claim(HoldKind.TRAIN, run.run_id, run.currency, items, class_code=class_code, segment=segment)


async def get_hold(deps: BookingDeps, hold_id: str, *, user: Principal) -> Hold:
    """The customer's hold with what it is for (the event, or the train journey), for the checkout page."""
    async with deps.db.read() as conn:
        hold = await owned_hold(conn, user, hold_id)
        details = await catalog_copy.details_of(conn, hold)
    return replace(hold, details=details).seen_at(deps.now())


async def release_hold(deps: BookingDeps, hold_id: str, *, user: Principal) -> None:
    async def work(uow: UnitOfWork) -> None:
        now = deps.now()
        hold = await owned_hold(uow.conn, user, hold_id)
        if not hold.is_live(now):
            raise domain.HoldNotActive(f"This hold is {hold.seen_at(now).status}.")
        if not await end_hold(uow, hold_id, to=HoldStatus.RELEASED, now=now, actor=user.id):
            raise domain.HoldNotActive("This hold is no longer active.")

    await deps.db.transact(work)
