"""A fan's music journeys in a real browser: from an event's line-up to a playlist, and from an artist to tickets."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import create_user, log_in
from tests.harness.server import Server


def _event_id(server: Server, name: str) -> str:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        events = client.get("/api/events", params={"limit": 100}).json()["items"]
    return str(next(e["id"] for e in events if e["name"] == name))


def _titles(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("[data-testid=playlist-track] .what strong").all_inner_texts()]


def test_make_a_playlist_from_an_events_lineup_and_arrange_it(page: Page, context: BrowserContext,
                                                              server: Server) -> None:
    create_user(server, "listener@example.com", "Lena Listener")
    log_in(page, "listener@example.com")
    page.goto(f"/events/{_event_id(server, 'Jazz at Blue Note')}")
    lineup = page.get_by_test_id("lineup")
    expect(lineup.get_by_test_id("lineup-artist")).to_have_count(3)
    headliner = lineup.get_by_test_id("lineup-artist").first.inner_text()
    page.get_by_test_id("make-playlist").click()

    expect(page.locator("body")).to_have_attribute("data-page", "playlist")
    expect(page.get_by_test_id("playlist-created")).to_be_visible()
    expect(page.get_by_test_id("playlist-title")).to_contain_text("Jazz at Blue Note")
    expect(page.get_by_test_id("playlist-track")).to_have_count(9)  # three top tracks of each of three artists
    expect(page.get_by_test_id("playlist-track").first.locator("a")).to_have_text(headliner)
    before = _titles(page)

    page.get_by_test_id("move-down").first.click()
    expect(page.get_by_test_id("playlist-track").first.locator("strong")).to_have_text(before[1])
    assert _titles(page)[:2] == [before[1], before[0]]
    page.get_by_test_id("remove-track").last.click()
    expect(page.get_by_test_id("playlist-track")).to_have_count(8)
    positions = page.get_by_test_id("playlist-track").evaluate_all("els => els.map(e => e.dataset.position)")
    assert positions == [str(i) for i in range(8)]

    # The same playlist open in a second tab, now out of date: its move is refused, not applied on top.
    stale = context.new_page()
    stale.goto(page.url)
    page.get_by_test_id("move-down").first.click()
    expect(page.get_by_test_id("playlist-track").first.locator("strong")).to_have_text(before[0])
    stale.get_by_test_id("move-down").nth(2).click()
    expect(stale.get_by_test_id("playlist-error")).to_contain_text("changed somewhere else")
    assert _titles(stale) == _titles(page)
    stale.close()

    # Share it: public, with a link another visitor can open; while private, they cannot.
    playlist_url = page.url.split("?")[0]
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get(playlist_url.replace(server.url, "")).status_code == 404
    page.get_by_test_id("edit-playlist").click()
    page.get_by_test_id("edit-name").fill("Blue Note night")
    page.get_by_test_id("edit-public").check()
    page.get_by_test_id("save-playlist").click()
    expect(page.get_by_test_id("playlist-title")).to_have_text("Blue Note night")
    expect(page.get_by_test_id("share-url")).to_have_value(playlist_url)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        shared = client.get(playlist_url.replace(server.url, ""))
        assert shared.status_code == 200 and "Blue Note night" in shared.text and "move-down" not in shared.text

    page.goto("/playlists")
    expect(page.get_by_test_id("playlist-card")).to_have_count(1)
    expect(page.get_by_test_id("playlist-card")).to_contain_text("8 songs")


@pytest.mark.parametrize("context", [{"width": 390, "height": 844}], indirect=True)
def test_from_an_artist_to_tickets_on_a_phone(page: Page, server: Server) -> None:
    create_user(server, "phone-fan@example.com", "Phone Fan")
    log_in(page, "phone-fan@example.com")
    page.goto("/playlists")
    page.get_by_test_id("playlist-name").fill("Commute")
    page.get_by_test_id("create-playlist").click()
    expect(page.get_by_test_id("playlist-empty")).to_be_visible()

    page.goto("/artists?genre=jazz")
    cards = page.get_by_test_id("artist-card")
    expect(cards.first).to_be_visible()
    assert all("jazz" in text for text in cards.all_inner_texts())
    event_id = _event_id(server, "Jazz at Blue Note")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        name = client.get(f"/api/lineups/{event_id}").json()["artists"][0]["name"]
    page.get_by_test_id("artist-q").fill(name.lower())
    page.get_by_test_id("artist-search").click()
    expect(page.get_by_test_id("artist-card").first).to_contain_text(name)
    expect(page.get_by_test_id("track").first).to_be_visible()
    page.get_by_test_id("artist-card").first.locator("a").click()

    expect(page.get_by_test_id("artist-name")).to_have_text(name)
    page.get_by_test_id("add-track").first.click()
    expect(page.get_by_test_id("track-added")).to_contain_text("Commute")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    show = page.locator(f"[data-testid=upcoming-event][data-event-id='{event_id}']")
    show.get_by_test_id("buy-tickets").click()
    expect(page.locator("body")).to_have_attribute("data-page", "event")
    expect(page.get_by_test_id("lineup")).to_contain_text(name)
    expect(page.locator("[data-testid=sections], #seatmap").first).to_be_visible()  # tables at Blue Note: a seat map
    page.goto("/playlists")
    expect(page.get_by_test_id("playlist-card")).to_contain_text("1 song")
