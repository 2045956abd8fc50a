"""Tickets against real databases (SQLite and PostgreSQL), the real bus and workers, through the gateway.

Booking is another service: its ``ticket-bookings`` events are published onto the real bus here, and its
``GET /internal/orders/{id}`` is answered by a stand-in app that follows docs/contracts.md.
"""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pypdf
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from boxoffice.identity.deps import IdentitySettings
from boxoffice.platform.bus.envelope import Envelope, new_event
from boxoffice.platform.internal import INTERNAL_HEADER, internal_token
from boxoffice.platform.settings import Settings
from boxoffice.tickets.codes import b64url_decode_strict, verify_code
from boxoffice.tickets.deps import TicketsSettings
from tests.harness.app import Running, running, wait_for
from tests.harness.booking import token_for

PASSWORD = "a-long-ticket-password"
ADMIN = {"email": "boss@example.com", "password": "boss-password-2026"}
MB = 1024 * 1024


def admin_identity() -> IdentitySettings:
    return IdentitySettings(admin_email=ADMIN["email"], admin_password=ADMIN["password"])


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[Running]:
    configs = {"identity": admin_identity(), "tickets": TicketsSettings(database_url=db_url)}
    async with running(Settings(data_dir=tmp_path), ["identity", "tickets"], configs=configs) as app:
        yield app


@pytest.fixture
async def sqlite_app(tmp_path: Path) -> AsyncIterator[Running]:
    configs = {"identity": admin_identity()}
    async with running(Settings(data_dir=tmp_path), ["identity", "tickets"], configs=configs) as app:
        yield app


# Helpers: people, orders, tickets.
class User:
    def __init__(self, id: str, token: str) -> None:
        self.id = id
        self.headers = {"Authorization": f"Bearer {token}"}


async def customer(client: httpx.AsyncClient, email: str = "fan@example.com") -> User:
    response = await client.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": "Fan"})
    assert response.status_code == 201, response.text

    async def code() -> str | None:
        items = (await client.get("/api/dev/mailbox", params={"to": email})).json()["items"]
        return items[0]["text"] if items else None

    match = re.search(r"\b(\d{6})\b", await wait_for(code))
    assert match
    tokens = (await client.post("/api/auth/verify", json={"email": email, "code": match.group(1)})).json()
    return User(response.json()["id"], tokens["access_token"])


async def admin(client: httpx.AsyncClient) -> User:
    tokens = (await client.post("/api/auth/login", json=ADMIN)).json()
    me = (await client.get("/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})).json()
    return User(me["id"], tokens["access_token"])


def booking_event(
    user_id: str,
    *,
    status: str = "confirmed",
    order_id: str | None = None,
    seats: int = 2,
    general: int = 0,
    holder: str = "Ann Fan",
) -> Envelope:
    event_id = "ev-" + uuid.uuid4().hex[:8]
    items = [
        {"seat_id": f"seat-{n}", "label": f"A-{n}", "section": "Stalls", "price": 4500} for n in range(1, seats + 1)
    ]
    items += [{"seat_id": None, "label": "Floor", "section": "Floor", "price": 3000}] * general
    data = {
        "event_id": event_id,
        "user_id": user_id,
        "order_id": order_id or str(uuid.uuid4()),
        "ticket_count": len(items),
        "amount_minor": 4500 * len(items),
        "currency": "EUR",
        "status": status,
        "timestamp": "2026-11-22T10:00:00Z",
        "kind": "event",
        "holder_name": holder,
        "items": items,
        "event": {
            "name": "Night of Strings",
            "venue": "Philharmonie",
            "city": "Berlin",
            "starts_at": "2026-12-01T19:30:00Z",
        },
    }
    return new_event(f"booking.order-{status}", source="booking", key=event_id, data=data, topic="ticket-bookings")


def on_key(key: str, event: Envelope) -> Envelope:
    """``event`` as a new event on partition key ``key`` (events of one key are handled in order)."""
    return new_event(event.type, source="booking", key=key, data=event.data, topic="ticket-bookings")


def cancellation(confirmed: Envelope) -> Envelope:
    data = {**confirmed.data, "status": "cancelled"}
    return new_event("booking.order-cancelled", source="booking", key=confirmed.key, data=data, topic="ticket-bookings")


async def order_tickets(app: Running, order_id: str) -> list[dict[str, Any]]:
    response = await app.runtime.clients.get("tickets").get(f"/internal/orders/{order_id}/tickets")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def issued(app: Running, order_id: str, count: int, *, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The order's tickets once all ``count`` have their PDF stored."""

    async def ready() -> list[dict[str, Any]] | None:
        items = await order_tickets(app, order_id)
        return items if len(items) == count and all(t["pdf_url"] for t in items) else None

    result: list[dict[str, Any]] = await wait_for(ready, timeout=timeout)
    return result


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["type"])


# Issuing, PDFs, check-in: on SQLite and PostgreSQL.
async def test_confirmed_order_gets_signed_tickets_pdfs_and_one_admission_each(app: Running) -> None:
    fan, boss = await customer(app.client), await admin(app.client)
    other = await customer(app.client, "x@example.com")
    confirmed = booking_event(fan.id, seats=2, holder="Ann Fan")
    await app.runtime.bus.publish([confirmed])
    tickets = await issued(app, confirmed.data["order_id"], 2)
    assert {t["status"] for t in tickets} == {"valid"}

    # The code verifies offline with the published keys alone.
    jwks = (await app.client.get("/api/tickets/keys")).json()["keys"]
    public = {k["kid"]: Ed25519PublicKey.from_public_bytes(b64url_decode_strict(k["x"])) for k in jwks}
    claims = verify_code(tickets[0]["code"], public)
    assert claims.ticket_id == tickets[0]["id"] and claims.holder == "Ann Fan" and claims.seat == "A-1"
    assert claims.subject_id == confirmed.data["event_id"]

    # The owner (and an admin) download the PDF; someone else may not.
    pdf = await app.client.get(tickets[0]["pdf_url"], headers=fan.headers)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    order_id = confirmed.data["order_id"]
    for expected in ("Ann Fan", "Night of Strings", "Philharmonie, Berlin", "Stalls, seat A-1", order_id):
        assert expected in text, expected
    assert tickets[0]["code"] in text.replace("\n", "")
    assert (await app.client.get(tickets[0]["pdf_url"], headers=boss.headers)).status_code == 200
    assert (await app.client.get(tickets[0]["pdf_url"], headers=other.headers)).status_code == 403
    assert (await app.client.get(tickets[0]["pdf_url"])).status_code == 401
    assert (await app.client.get(f"/api/tickets/{uuid.uuid4()}/pdf", headers=fan.headers)).status_code == 404

    mine = (await app.client.get("/api/tickets", params={"order_id": order_id}, headers=fan.headers)).json()
    assert [t["id"] for t in mine["items"]] == [t["id"] for t in tickets] and mine["next_cursor"] is None
    assert (await app.client.get("/api/tickets", headers=other.headers)).json()["items"] == []

    # Check-in: admitted once, then already used; customers cannot scan.
    code = tickets[0]["code"]
    assert (await app.client.post("/api/checkin", json={"code": code}, headers=fan.headers)).status_code == 403
    first = await app.client.post("/api/checkin", json={"code": code}, headers=boss.headers)
    assert first.status_code == 200 and first.json()["ticket_id"] == tickets[0]["id"]
    assert first.json()["status"] == "admitted" and first.json()["retry"] is False
    again = await app.client.post("/api/checkin", json={"code": code}, headers=boss.headers)
    assert again.status_code == 409 and problem_type(again) == "/problems/already-used"
    assert (await order_tickets(app, confirmed.data["order_id"]))[0]["status"] == "used"

    # A tampered code (another holder name in the payload, the signature kept) is refused.
    payload, signature = tickets[1]["code"].split(".")
    forged_payload = payload.replace(payload[30], "A" if payload[30] != "A" else "B", 1)
    forged_code = f"{forged_payload}.{signature}"
    forged = await app.client.post("/api/checkin", json={"code": forged_code}, headers=boss.headers)
    assert forged.status_code == 400 and problem_type(forged) == "/problems/invalid-code"
    genuine = await app.client.post("/api/checkin", json={"code": tickets[1]["code"]}, headers=boss.headers)
    assert genuine.status_code == 200


async def test_a_ticket_shows_its_code_at_once_and_downloads_before_the_renderer_reaches_it(app: Running) -> None:
    fan, other = await customer(app.client), await customer(app.client, "x@example.com")
    renderer = next(t for t in app.runtime._tasks if t.get_name() == "tickets:pdf-renderer")
    renderer.cancel()  # the renderer is far behind (a sale): the tickets wait for it
    await asyncio.gather(renderer, return_exceptions=True)
    confirmed = booking_event(fan.id, seats=2, holder="Ann Fan")
    order_id = confirmed.data["order_id"]
    await app.runtime.bus.publish([confirmed])

    async def visible() -> list[dict[str, Any]] | None:
        items = await order_tickets(app, order_id)
        return items if len(items) == 2 else None

    first, second = await wait_for(visible)
    assert first["code"] and second["code"] and first["pdf_url"] is None and second["pdf_url"] is None
    url = f"/api/tickets/{first['id']}/pdf"
    assert (await app.client.get(url, headers=other.headers)).status_code == 403

    # Three downloads at once: one rendering, stored and recorded as the renderer would have done it.
    downloads = await asyncio.gather(*(app.client.get(url, headers=fan.headers) for _ in range(3)))
    assert [d.status_code for d in downloads] == [200] * 3, downloads[0].text
    assert all(d.headers["content-type"] == "application/pdf" for d in downloads)
    text = pypdf.PdfReader(io.BytesIO(downloads[0].content)).pages[0].extract_text()
    assert "Ann Fan" in text and first["code"] in text.replace("\n", "")
    assert [bool(t["pdf_url"]) for t in await order_tickets(app, order_id)] == [True, False]
    stored = await app.service("tickets").objects.get(f"tickets/{order_id}/{first['id']}.pdf")
    assert stored in {d.content for d in downloads}

    # The renderer, back, renders only the other ticket: one tickets.issued per ticket (the relay may deliver
    # an event twice, as it may any event: the same event id).
    await app.runtime.restart_workers("tickets")
    await issued(app, order_id, 2)
    assert await app.service("tickets").objects.get(f"tickets/{order_id}/{first['id']}.pdf") == stored
    probe = app.runtime.bus.consumer(f"probe-{uuid.uuid4().hex[:6]}", ["tickets"])
    await probe.start()
    try:
        seen: dict[str, str] = {}  # event id: ticket id

        async def both() -> bool:
            records = await probe.poll(timeout=0.5)
            seen.update(
                (r.envelope.id, r.envelope.data["ticket_id"])
                for r in records
                if r.envelope.type == "tickets.issued" and r.envelope.data["order_id"] == order_id
            )
            await probe.commit(records)
            return len(seen) >= 2

        await wait_for(both, timeout=20)
        await asyncio.sleep(0.5)
        await both()
        assert sorted(seen.values()) == sorted([first["id"], second["id"]])
    finally:
        await probe.stop()


async def test_a_booking_delivered_twice_issues_one_set_of_tickets(app: Running) -> None:
    fan = await customer(app.client)
    confirmed = booking_event(fan.id, seats=1, general=2)
    resent = on_key(confirmed.key, confirmed)
    # The same event twice (at-least-once delivery), and the same confirmation re-sent under a new event id.
    await app.runtime.bus.publish([confirmed, confirmed])
    await app.runtime.bus.publish([resent])
    marker = on_key(confirmed.key, booking_event(fan.id, seats=1))  # on the same key, last: handled after them
    await app.runtime.bus.publish([marker])
    await issued(app, marker.data["order_id"], 1)
    tickets = await issued(app, confirmed.data["order_id"], 3)
    assert len({t["id"] for t in tickets}) == 3
    assert len({t["code"] for t in tickets}) == 3


async def test_concurrent_scans_of_one_code_admit_exactly_once(app: Running) -> None:
    fan, boss = await customer(app.client), await admin(app.client)
    confirmed = booking_event(fan.id, seats=1)
    await app.runtime.bus.publish([confirmed])
    (ticket,) = await issued(app, confirmed.data["order_id"], 1)
    responses = await asyncio.gather(
        *(app.client.post("/api/checkin", json={"code": ticket["code"]}, headers=boss.headers) for _ in range(12))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 11, statuses
    assert all(problem_type(r) == "/problems/already-used" for r in responses if r.status_code == 409)


async def test_the_gate_admits_only_its_event_shows_who_and_where_and_knows_a_retried_scan(app: Running) -> None:
    fan, boss = await customer(app.client), await admin(app.client)
    confirmed = booking_event(fan.id, seats=2, holder="Анна Фан")
    other = booking_event(fan.id, seats=1)
    await app.runtime.bus.publish([confirmed, other])
    tickets = await issued(app, confirmed.data["order_id"], 2)
    (elsewhere,) = await issued(app, other.data["order_id"], 1)
    event_id = confirmed.data["event_id"]
    pdf = await app.client.get(tickets[0]["pdf_url"], headers=fan.headers)  # the name in its own script
    assert "Holder Анна Фан" in pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()

    def scan(code: str, nonce: str, **extra: str) -> dict[str, str]:
        return {"code": code, "event_id": event_id, "gate": "North 3", "nonce": nonce, **extra}

    wrong = await app.client.post("/api/checkin", json=scan(elsewhere["code"], "nonce-0001"), headers=boss.headers)
    assert wrong.status_code == 409 and problem_type(wrong) == "/problems/wrong-event"
    assert (await order_tickets(app, other.data["order_id"]))[0]["status"] == "valid"  # not admitted

    first = await app.client.post("/api/checkin", json=scan(tickets[0]["code"], "nonce-0002"), headers=boss.headers)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "ticket_id": tickets[0]["id"],
        "status": "admitted",
        "retry": False,
        "event_id": event_id,
        "event_name": "Night of Strings",
        "kind": "event",
        "holder_name": "Анна Фан",
        "section": "Stalls",
        "seat": "A-1",
        "gate": "North 3",
    }
    # The same scan again (the gate lost the answer and retries): the same admission, marked as a retry.
    retried = await app.client.post("/api/checkin", json=scan(tickets[0]["code"], "nonce-0002"), headers=boss.headers)
    assert retried.status_code == 200 and retried.json() == {**first.json(), "retry": True}
    # Another scan of the admitted ticket (a new nonce, or none) is a second use.
    for again in (scan(tickets[0]["code"], "nonce-0003"), {"code": tickets[0]["code"]}):
        used = await app.client.post("/api/checkin", json=again, headers=boss.headers)
        assert used.status_code == 409 and problem_type(used) == "/problems/already-used"
    # Another staff member replaying the nonce is not the gate that admitted it.
    staff = token_for(app, roles=("staff",))
    replayed = await app.client.post("/api/checkin", json=scan(tickets[0]["code"], "nonce-0002"), headers=staff)
    assert replayed.status_code == 409 and problem_type(replayed) == "/problems/already-used"
    for bad in ({"nonce": "short"}, {"event_id": "a/b"}, {"gate": ""}, {"event_id": 7}):
        invalid = await app.client.post(
            "/api/checkin", json={**scan(tickets[1]["code"], "n-12345678"), **bad}, headers=boss.headers
        )
        assert invalid.status_code == 422, bad
    assert (await order_tickets(app, confirmed.data["order_id"]))[1]["status"] == "valid"


async def test_a_cancelled_orders_tickets_are_voided(app: Running) -> None:
    fan, boss = await customer(app.client), await admin(app.client)
    confirmed = booking_event(fan.id, seats=2)
    await app.runtime.bus.publish([confirmed])
    tickets = await issued(app, confirmed.data["order_id"], 2)
    await app.runtime.bus.publish([cancellation(confirmed)])

    async def voided() -> bool:
        return {t["status"] for t in await order_tickets(app, confirmed.data["order_id"])} == {"voided"}

    await wait_for(voided)
    response = await app.client.post("/api/checkin", json={"code": tickets[0]["code"]}, headers=boss.headers)
    assert response.status_code == 409 and problem_type(response) == "/problems/voided"
    # A voided ticket's PDF is no longer given out (a printout would look like a ticket), and not linked.
    pdf = await app.client.get(tickets[0]["pdf_url"], headers=fan.headers)
    assert pdf.status_code == 409 and problem_type(pdf) == "/problems/voided"
    assert [t["pdf_url"] for t in await order_tickets(app, confirmed.data["order_id"])] == [None, None]


async def test_a_cancellation_that_overtakes_its_confirmation_issues_nothing(sqlite_app: Running) -> None:
    app = sqlite_app
    fan = await customer(app.client)
    confirmed = booking_event(fan.id, seats=2)
    marker = on_key(confirmed.key, booking_event(fan.id, seats=1))
    await app.runtime.bus.publish([cancellation(confirmed), confirmed, marker])
    await issued(app, marker.data["order_id"], 1)
    assert await order_tickets(app, confirmed.data["order_id"]) == []


# Uploads: the ID proof and the ticket-generator function (embedded: a consumer of storage.objects).
def booking_stand_in(app: Running, owners: dict[str, str]) -> None:
    """Booking's ``GET /internal/orders/{id}`` per docs/contracts.md, for the orders in ``owners``."""
    stand_in = FastAPI()
    expected = internal_token(app.runtime.settings.secret)

    @stand_in.get("/internal/orders/{order_id}")
    async def order(order_id: str, request: Request) -> JSONResponse:
        if request.headers.get(INTERNAL_HEADER) != expected:
            return JSONResponse({"type": "/problems/forbidden", "status": 403}, status_code=403)
        if order_id not in owners:
            return JSONResponse({"type": "/problems/not-found", "title": "Not found", "status": 404}, status_code=404)
        return JSONResponse(
            {
                "id": order_id,
                "user_id": owners[order_id],
                "status": "confirmed",
                "hold_id": "h1",
                "hold_version": 1,
                "total": 9000,
                "currency": "EUR",
                "expires_at": None,
                "kind": "event",
                "event_id": "e1",
                "holder_name": "Ann Fan",
                "items": [],
                "payment_id": "p1",
            }
        )

    app.runtime.clients.register_local("booking", stand_in)


PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200


async def upload(app: Running, user: User, order_id: str, content: bytes, name: str = "id.pdf") -> httpx.Response:
    files = {"file": (name, content, "application/pdf")}
    return await app.client.post("/api/uploads", data={"order_id": order_id}, files=files, headers=user.headers)


async def test_id_proof_upload_is_checked_then_verified_with_a_receipt(sqlite_app: Running) -> None:
    app = sqlite_app
    fan, other = await customer(app.client), await customer(app.client, "x@example.com")
    confirmed = booking_event(fan.id, seats=1)
    order_id = confirmed.data["order_id"]
    booking_stand_in(app, {order_id: fan.id, "someone-elses": other.id})
    await app.runtime.bus.publish([confirmed])
    (ticket,) = await issued(app, order_id, 1)

    too_large = await upload(app, fan, order_id, b"%PDF-" + b"0" * (5 * MB - 4))  # 5 MB + 1 byte
    assert too_large.status_code == 413, too_large.text
    renamed_executable = await upload(app, fan, order_id, ELF, name="x.pdf")
    assert renamed_executable.status_code == 415 and problem_type(renamed_executable).startswith("/problems/")
    assert (await upload(app, fan, "someone-elses", PDF)).status_code == 404
    assert (await upload(app, fan, "no-such-order", PDF)).status_code == 404
    # An order id that is not one plain path segment names no order (booking is never asked with it).
    for hostile in [f"x/../{order_id[:8]}", "someone-elses/x", "\x00", "a b", "%2F", ".."]:
        refused = await upload(app, fan, hostile, PDF)
        assert refused.status_code == 404 and problem_type(refused) == "/problems/order-not-found", hostile
    anonymous = await app.client.post("/api/uploads", data={"order_id": order_id}, files={"file": ("a", PDF)})
    assert anonymous.status_code == 401

    exactly_5mb = await upload(app, fan, order_id, b"%PDF-" + b"0" * (5 * MB - 5))
    assert exactly_5mb.status_code == 201, exactly_5mb.text
    created = await upload(app, fan, order_id, PDF)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "pending" and body["size"] == len(PDF) and body["content_type"] == "application/pdf"

    async def verified() -> dict[str, Any] | None:
        state = (await app.client.get(f"/api/uploads/{body['id']}", headers=fan.headers)).json()
        return state if state["status"] != "pending" else None

    state = await wait_for(verified)
    assert state["status"] == "verified" and state["receipt_key"] == f"tickets/{body['id']}_TICKET.txt"
    objects = app.service("tickets").objects
    receipt = (await objects.get(state["receipt_key"])).decode()
    assert "VERIFIED" in receipt and order_id in receipt
    assert f"tickets/{order_id}/{ticket['id']}.pdf" in receipt
    assert await objects.get(f"uploads/{fan.id}/{body['id']}") == PDF
    # The receipt's own object-created event did not trigger the generator again: one receipt per upload.
    await asyncio.sleep(0.5)
    receipts = await objects.list("tickets/")
    assert sorted(k for k in receipts if k.endswith("_TICKET.txt")) == sorted(
        [state["receipt_key"], f"tickets/{exactly_5mb.json()['id']}_TICKET.txt"]
    )
    assert (await app.client.get(f"/api/uploads/{body['id']}", headers=other.headers)).status_code == 404
    trail = [(e["action"], e["actor"]) for e in await audit(app, order_id) if e["entity_id"] == body["id"]]
    assert trail == [("upload.received", fan.id), ("upload.verified", "system")]


async def test_uploads_answer_503_while_booking_cannot_be_asked(sqlite_app: Running) -> None:
    fan = await customer(sqlite_app.client)
    response = await upload(sqlite_app, fan, "some-order", PDF)
    assert response.status_code == 503 and problem_type(response) == "/problems/service-unavailable"


# The audit trail (booking merges it into an order's history) and hostile ids: on SQLite and PostgreSQL.
async def audit(app: Running, order_id: str) -> list[dict[str, Any]]:
    response = await app.runtime.clients.get("tickets").get(f"/internal/orders/{order_id}/audit")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_every_state_change_of_a_ticket_is_in_the_orders_audit_trail(app: Running) -> None:
    fan, boss = await customer(app.client), await admin(app.client)
    confirmed = booking_event(fan.id, seats=2)
    order_id = confirmed.data["order_id"]
    await app.runtime.bus.publish([confirmed])
    first, second = await issued(app, order_id, 2)
    admitted = await app.client.post("/api/checkin", json={"code": first["code"]}, headers=boss.headers)
    assert admitted.status_code == 200
    refused = await app.client.post("/api/checkin", json={"code": first["code"]}, headers=boss.headers)
    assert refused.status_code == 409  # a refusal changes nothing, so it leaves no entry
    await app.runtime.bus.publish([cancellation(confirmed)])

    async def voided() -> list[dict[str, Any]] | None:
        entries = await audit(app, order_id)
        return entries if entries[-1]["action"] == "ticket.voided" else None

    entries = await wait_for(voided)
    assert [(e["action"], e["entity_id"], e["actor"]) for e in entries] == [
        ("ticket.issued", first["id"], "system"),
        ("ticket.issued", second["id"], "system"),
        ("ticket.checked-in", first["id"], f"staff:{boss.id}"),
        ("ticket.voided", second["id"], "system"),  # the used ticket stays used
    ]
    assert {e["entity"] for e in entries} == {"ticket"}
    assert entries[0]["detail"] == {"line_no": 1, "label": "A-1", "seat_id": "seat-1"}
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    assert await audit(app, str(uuid.uuid4())) == []

    # Internal only: the gateway routes no /internal/ path, and without the internal token it is refused.
    assert (await app.client.get(f"/internal/orders/{order_id}/audit", headers=boss.headers)).status_code == 404
    direct = httpx.ASGITransport(app=app.service("tickets").create_app())
    async with httpx.AsyncClient(transport=direct, base_url="http://tickets.test") as client:
        without_token = await client.get(f"/internal/orders/{order_id}/audit", headers=boss.headers)
    assert without_token.status_code == 403 and problem_type(without_token) == "/problems/forbidden"


async def test_hostile_ids_get_a_problem_never_a_500(app: Running) -> None:
    fan = await customer(app.client)
    confirmed = booking_event(fan.id, seats=1)
    await app.runtime.bus.publish([confirmed])
    await issued(app, confirmed.data["order_id"], 1)
    for raw in ["%00", "%0A", "%0d%0a", "not-a-uuid", "%2e%2e", "x%20y", "0" * 300, "%C3%28"]:
        for path in (f"/api/tickets/{raw}/pdf", f"/api/uploads/{raw}"):
            response = await app.client.get(path, headers=fan.headers)
            assert response.status_code in (404, 422), (path, response.status_code, response.text)
            assert problem_type(response).startswith("/problems/")
    for value in ["\x00", "a/b", "a b", "x" * 65, "é"]:
        response = await app.client.get("/api/tickets", params={"order_id": value}, headers=fan.headers)
        assert response.status_code == 422, (value, response.text)
        assert problem_type(response) == "/problems/validation-error"
        response = await app.client.get("/api/tickets", params={"cursor": value}, headers=fan.headers)
        assert response.status_code == 400, (value, response.text)  # cursors are opaque (platform.pagination)
        assert problem_type(response) == "/problems/invalid-cursor"
    internal = app.runtime.clients.get("tickets")
    for raw in ["%00", "%0A", "x%20y", "0" * 65]:
        for path in (f"/internal/orders/{raw}/tickets", f"/internal/orders/{raw}/audit"):
            response = await internal.get(path)
            assert response.status_code == 422, (path, response.status_code, response.text)
