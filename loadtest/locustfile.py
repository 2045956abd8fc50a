"""The seed's load test as a Locust scenario: fans browsing events, artists and tracks, and building playlists.

Two kinds of users, in the seed's proportions (most read, some write):

- ``Browser`` (3 of 4): the events list and an event with its line-up, artist search and pages, track search.
- ``PlaylistBuilder`` (1 of 4): a registered fan (signed up through the dev mailbox on start) who makes a
  playlist from an event's line-up, adds and removes tracks, reorders with ``If-Match``, reads it back, and
  deletes it now and then (so a long run does not pile playlists up).

Every user paces itself with ``constant_throughput(LOCUST_RATE_PER_USER)`` requests per second, so the total
rate is ``users x rate``: the seed's ~3,500 requests per minute is 20 users at 2.92 (``loadtest/run_locust.sh``
runs that and ten times that). Headless only; point it at 127.0.0.1:

    locust -f loadtest/locustfile.py --headless --host http://127.0.0.1:8000 -u 20 -r 10 --run-time 60s
"""

from __future__ import annotations

import os
import random
import re
import time
import uuid
from typing import Any

from locust import HttpUser, constant_throughput, events, task
from locust.env import Environment

RATE = float(os.environ.get("LOCUST_RATE_PER_USER", "2.92"))
WORDS = ["golden", "neon", "harbour", "summer", "jazz", "rock", "paper", "midnight", "echoes", "waves"]
GENRES = ["pop", "rock", "indie", "folk", "jazz", "classical", "electronic", "hip-hop"]


class Catalogue:
    """What every user picks from, fetched once per run (events with line-ups, artists, tracks)."""

    events: list[str] = []
    lineup_events: list[str] = []
    artists: list[str] = []
    tracks: list[str] = []


@events.test_start.add_listener
def load_catalogue(environment: Environment, **_: Any) -> None:
    import httpx

    host = environment.host or "http://127.0.0.1:8000"
    with httpx.Client(base_url=host, timeout=30) as client:
        items = client.get("/api/events", params={"limit": 100}).json()["items"]
        Catalogue.events = [e["id"] for e in items]
        Catalogue.lineup_events = [e["id"] for e in items if e["category"] in ("concert", "festival")]
        Catalogue.artists = [a["id"] for a in client.get("/api/artists", params={"limit": 100}).json()["items"]]
        Catalogue.tracks = [t["id"] for t in client.get("/api/tracks", params={"limit": 100}).json()["items"]]


class Browser(HttpUser):
    weight = 3
    wait_time = constant_throughput(RATE)

    @task(3)
    def events(self) -> None:
        self.client.get("/api/events?limit=20", name="/api/events")

    @task(2)
    def event(self) -> None:
        event_id = random.choice(Catalogue.events)
        self.client.get(f"/api/events/{event_id}", name="/api/events/{id}")

    @task(2)
    def lineup(self) -> None:
        self.client.get(f"/api/lineups/{random.choice(Catalogue.lineup_events)}", name="/api/lineups/{id}")

    @task(3)
    def search_artists(self) -> None:
        params = {"q": random.choice(WORDS)} if random.random() < 0.6 else {"genre": random.choice(GENRES)}
        self.client.get("/api/artists", params=params, name="/api/artists?search")

    @task(3)
    def artist(self) -> None:
        self.client.get(f"/api/artists/{random.choice(Catalogue.artists)}", name="/api/artists/{id}")

    @task(3)
    def search_tracks(self) -> None:
        self.client.get("/api/tracks", params={"q": random.choice(WORDS), "limit": 20}, name="/api/tracks?q")


class PlaylistBuilder(HttpUser):
    weight = 1
    wait_time = constant_throughput(RATE)

    def on_start(self) -> None:
        email = f"load-{uuid.uuid4().hex[:12]}@example.com"
        password = "a-long-load-test-password"
        self.client.post("/api/auth/register", json={"email": email, "password": password, "name": "Load Fan"},
                         name="/api/auth/register")
        code = None
        for _ in range(50):
            mail = self.client.get("/api/dev/mailbox", params={"to": email}, name="/api/dev/mailbox").json()
            if mail["items"] and (match := re.search(r"\b(\d{6})\b", mail["items"][0]["text"])):
                code = match.group(1)
                break
            time.sleep(0.1)
        tokens = self.client.post("/api/auth/verify", json={"email": email, "code": code},
                                  name="/api/auth/verify").json()
        self.headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        self.playlist: dict[str, Any] | None = None

    def _keep(self, response: Any) -> None:
        if response.status_code in (200, 201):
            self.playlist = response.json()

    @task(1)
    def from_lineup(self) -> None:
        event_id = random.choice(Catalogue.lineup_events)
        if self.playlist is not None and random.random() < 0.5:
            self.client.delete(f"/api/playlists/{self.playlist['id']}", headers=self.headers,
                               name="/api/playlists/{id} DELETE")
            self.playlist = None
        self._keep(self.client.post(f"/api/lineups/{event_id}/playlist", headers=self.headers,
                                    name="/api/lineups/{id}/playlist"))

    @task(4)
    def add_track(self) -> None:
        if self.playlist is None:
            self._keep(self.client.post("/api/playlists", json={"name": "On the way"}, headers=self.headers,
                                        name="/api/playlists POST"))
            return
        body = {"track_id": random.choice(Catalogue.tracks)}
        self._keep(self.client.post(f"/api/playlists/{self.playlist['id']}/tracks", json=body, headers=self.headers,
                                    name="/api/playlists/{id}/tracks POST"))

    @task(2)
    def reorder(self) -> None:
        if self.playlist is None or len(self.playlist["tracks"]) < 2:
            return
        order = [e["track"]["id"] for e in self.playlist["tracks"]]
        random.shuffle(order)
        headers = {**self.headers, "If-Match": str(self.playlist["version"])}
        self._keep(self.client.put(f"/api/playlists/{self.playlist['id']}/tracks", json={"track_ids": order},
                                   headers=headers, name="/api/playlists/{id}/tracks PUT"))

    @task(1)
    def remove_track(self) -> None:
        if self.playlist is None or not self.playlist["tracks"]:
            return
        self._keep(self.client.delete(f"/api/playlists/{self.playlist['id']}/tracks/0", headers=self.headers,
                                      name="/api/playlists/{id}/tracks/{position} DELETE"))

    @task(3)
    def read(self) -> None:
        if self.playlist is None:
            self.client.get("/api/playlists", headers=self.headers, name="/api/playlists")
            return
        self.client.get(f"/api/playlists/{self.playlist['id']}", headers=self.headers, name="/api/playlists/{id}")
