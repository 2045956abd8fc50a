"""The gate page admits to a train run as well as to an event (issue 14: a conductor picks the train)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from boxoffice.identity.deps import IdentitySettings
from boxoffice.platform.settings import Settings
from tests.harness.app import Running, running, wait_for
from tests.harness.booking import token_for
from tests.integration.test_web import ADMIN, csrf_of

CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(data_dir=tmp_path, demo=True)
    identity = IdentitySettings(admin_email=ADMIN["email"], admin_password=ADMIN["password"])
    async with running(settings, ["identity", "catalog", "booking", "payments", "tickets", "web"],
                       configs={"identity": identity}) as app:
        yield app


async def train_ticket(app: Running, run_id: str, passenger: str) -> str:
    """A paid seat on the run's whole route for ``passenger``; its ticket's code."""
    buyer = token_for(app, name="Ann Buyer")
    run = (await app.client.get(f"/api/trains/runs/{run_id}")).json()
    hold = await app.client.post("/api/holds", headers=buyer, json={
        "run_id": run_id, "class_code": run["classes"][0]["code"], "origin": run["origin"],
        "destination": run["destination"], "quantity": 1})
    assert hold.status_code == 201, hold.text
    seat = hold.json()["items"][0]["seat_id"]
    order = await app.client.post("/api/orders", headers=buyer, json={
        "hold_id": hold.json()["id"], "passengers": [{"seat_id": seat, "name": passenger}]})
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    paid = await app.client.post(f"/api/orders/{order_id}/payment", json=CARD,
                                 headers={**buyer, "Idempotency-Key": uuid.uuid4().hex})
    assert paid.status_code == 200, paid.text

    async def code() -> str | None:
        tickets = (await app.client.get(f"/api/orders/{order_id}", headers=buyer)).json()["tickets"]
        return tickets[0]["code"] if tickets else None

    found: str = await wait_for(code, timeout=30)
    return found


async def test_a_gate_picks_a_train_run_and_admits_only_its_passengers(app: Running) -> None:
    page = await app.client.get("/account/login")
    logged_in = await app.client.post("/account/login", data={**ADMIN, "csrf_token": csrf_of(page), "next": "/"})
    assert logged_in.status_code == 303

    pick = await app.client.get("/admin/checkin")
    assert pick.status_code == 200
    trains = re.search(r'<optgroup label="Trains"[^>]*>(.*?)</optgroup>', pick.text, re.S)
    assert trains, "the gate lists the trains running today and tomorrow next to the events"
    options = re.findall(r'<option value="([^"]+)">([^<]+)</option>', trains.group(1))
    assert options and all(" → " in html.unescape(label) and "departs" in label for _, label in options)
    run_id, label = options[0]
    assert re.search(r"\d\d:\d\d (IST|CET|GMT)", label), "departures are shown in the station's local time"

    gate = await app.client.get("/admin/checkin", params={"event_id": run_id, "gate": "Coach B1"})
    assert gate.status_code == 200 and f'data-event-id="{run_id}" data-kind="train"' in gate.text

    code = await train_ticket(app, run_id, "Иван Петров")
    form = {"csrf_token": csrf_of(gate), "event_id": run_id, "gate": "Coach B1", "nonce": "scan-0000001", "code": code}
    admitted = await app.client.post("/admin/checkin", data=form)
    assert 'data-outcome="admitted"' in admitted.text
    assert "Иван Петров" in admitted.text and "<dt>Train</dt>" in admitted.text and "<dt>Class</dt>" in admitted.text
    assert "Have a good journey" in admitted.text

    # The same ticket at another train's gate is refused as the wrong one.
    other = next(rid for rid, _ in options if rid != run_id)
    again = await app.client.post("/admin/checkin", data={**form, "event_id": other, "nonce": "scan-0000002"})
    assert 'data-outcome="wrong-event"' in again.text and "another event or train" in again.text

    missing = await app.client.get("/admin/checkin", params={"event_id": str(uuid.uuid4())})
    assert missing.status_code == 404 and "does not exist" in missing.text
