"""What the seeds' shop load tests do, as Locust users (imported by ``locust_ramp.py`` and ``locust_rail.py``).

A ``Buyer`` signs up through the dev mailbox on start (so the target runs in dev mode), then browses and
buys: the home page, the events list, an event, a general-admission purchase (hold -> order -> pay, each with
an Idempotency-Key), its orders, the health check. A ``Traveller`` does the same for trains: a search between
two demo stations, a run, a one-seat purchase. "Sold out" (409) is a correct answer, not a failure.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from locust import HttpUser, between, events, task
from locust.env import Environment

CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
ROUTES = [("NDLS", "BCT"), ("NDLS", "BRC"), ("KOTA", "ST"), ("BCT", "NDLS")]
SOLD_OUT = (409,)


class Shop:
    """The events on sale, fetched once per run."""

    general: list[tuple[str, str]] = []  # (event id, section id) of general-admission sections

    @classmethod
    def load(cls, host: str) -> None:
        if cls.general:
            return
        with httpx.Client(base_url=host, timeout=30) as client:
            items = client.get("/api/events", params={"limit": 100}).json()["items"]
            for item in items:
                if item.get("seating") != "general":
                    continue
                event = client.get(f"/api/events/{item['id']}").json()
                cls.general += [(event["id"], s["id"]) for s in event["sections"]]
        if not cls.general:
            raise RuntimeError(f"{host} has no general-admission event on sale (start it with demo data)")


@events.test_start.add_listener
def load_shop(environment: Environment, **_: Any) -> None:
    Shop.load(environment.host or "http://127.0.0.1:8000")


class ShopUser(HttpUser):
    abstract = True
    wait_time = between(1, 2)  # k6's sleep(1) between iterations, with some spread

    def on_start(self) -> None:
        email = f"load-{uuid.uuid4().hex[:12]}@example.com"
        password = "a-long-load-test-password"
        self.client.post("/api/auth/register", json={"email": email, "password": password, "name": "Load Buyer"},
                         name="/api/auth/register")
        code = None
        # Reading the dev mailbox stands in for the buyer reading their e-mail: not part of the measured load.
        with httpx.Client(base_url=self.host or "http://127.0.0.1:8000", timeout=30) as mailbox:
            for _ in range(300):
                mail = mailbox.get("/api/dev/mailbox", params={"to": email}).json()
                if mail["items"] and (match := re.search(r"\b(\d{6})\b", mail["items"][0]["text"])):
                    code = match.group(1)
                    break
                time.sleep(0.2)
        tokens = self.client.post("/api/auth/verify", json={"email": email, "code": code}, name="/api/auth/verify")
        self.headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}

    def purchase(self, hold_body: dict[str, Any], kind: str) -> None:
        """Hold -> order -> pay; a 409 at the hold (sold out, no seat) ends the attempt without a failure."""
        key = uuid.uuid4().hex
        with self.client.post("/api/holds", json=hold_body, headers={**self.headers, "Idempotency-Key": key},
                              name=f"/api/holds ({kind})", catch_response=True) as held:
            if held.status_code in SOLD_OUT:
                held.success()
                return
            if held.status_code != 201:
                held.failure(f"{held.status_code} {held.text[:200]}")
                return
        body: dict[str, Any] = {"hold_id": held.json()["id"]}
        if kind == "train":  # a train ticket is personal: one passenger name per seat
            body["passengers"] = [{"seat_id": item["seat_id"], "name": "Load Traveller"}
                                  for item in held.json()["items"]]
        order = self.client.post("/api/orders", json=body, headers=self.headers, name="/api/orders POST")
        if order.status_code != 201:
            return
        self.client.post(f"/api/orders/{order.json()['id']}/payment", json=CARD,
                         headers={**self.headers, "Idempotency-Key": f"pay-{key}"}, name="/api/orders/{id}/payment")


class Buyer(ShopUser):
    """Seed 000/001's k6 user: home, events, an event, a booking, my bookings, health."""

    @task(2)
    def home(self) -> None:
        self.client.get("/", name="/ (home page)")

    @task(4)
    def events(self) -> None:
        self.client.get("/api/events?limit=20", name="/api/events")

    @task(3)
    def event(self) -> None:
        event_id, _ = random.choice(Shop.general)
        self.client.get(f"/api/events/{event_id}", name="/api/events/{id}")

    @task(2)
    def buy(self) -> None:
        event_id, section_id = random.choice(Shop.general)
        self.purchase({"event_id": event_id, "section_id": section_id, "quantity": random.randint(1, 2)}, "event")

    @task(2)
    def my_orders(self) -> None:
        self.client.get("/api/orders", headers=self.headers, name="/api/orders")

    @task(1)
    def health(self) -> None:
        self.client.get("/healthz", name="/healthz")


class Traveller(ShopUser):
    """Seed 003's railway user: search trains, look at a run, book a seat, read the orders."""

    @task(4)
    def search(self) -> None:
        self.find()

    @task(2)
    def book(self) -> None:
        if option := self.find():
            run, origin, destination, klass = option
            self.client.get(f"/api/trains/runs/{run}", params={"origin": origin, "destination": destination},
                            name="/api/trains/runs/{id}")
            body = {"run_id": run, "class_code": klass, "origin": origin, "destination": destination, "quantity": 1}
            self.purchase(body, "train")

    @task(2)
    def my_orders(self) -> None:
        self.client.get("/api/orders", headers=self.headers, name="/api/orders")

    def find(self) -> tuple[str, str, str, str] | None:
        origin, destination = random.choice(ROUTES)
        day = (datetime.now(UTC) + timedelta(days=random.randint(1, 20))).date().isoformat()
        found = self.client.get("/api/trains/search", params={"origin": origin, "destination": destination,
                                                              "date": day}, name="/api/trains/search")
        if found.status_code != 200:
            return None
        options = [(o["run_id"], c["code"]) for o in found.json()["items"] for c in o["classes"] if c["available"]]
        if not options:
            return None
        run, klass = random.choice(options)
        return run, origin, destination, klass
