"""The web front end's pure rules: money and time formatting, countdowns, CSRF tokens, friendly errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from boxoffice.web import domain, seatmap
from boxoffice.web.clients import at
from boxoffice.web.resources import CoachSeat, Seat, Section, Station

SECRET = b"test-secret"


def test_money_is_shown_in_major_units_with_the_currency() -> None:
    assert domain.format_money(269480, "INR") == "₹2,694.80"
    assert domain.format_money(2500, "EUR") == "€25.00"
    assert domain.format_money(5, "GBP") == "£0.05"
    assert domain.format_money(1234567, "CHF") == "12,345.67 CHF"
    assert domain.format_money(-150, "USD") == "-$1.50"


@given(st.integers(min_value=0, max_value=10**11 - 1))
def test_a_typed_price_reads_back_as_what_was_shown(minor: int) -> None:
    shown = domain.format_money(minor, "EUR").lstrip("€")
    assert domain.parse_money(shown) == minor


def test_prices_typed_by_people() -> None:
    assert domain.parse_money("45") == 4500
    assert domain.parse_money("45.5") == 4550
    assert domain.parse_money(" 1,250.00 ") == 125000
    assert domain.parse_money("-3") is None
    assert domain.parse_money("4.999") is None
    assert domain.parse_money("ten") is None


def test_times_are_shown_where_they_happen_and_durations_in_hours_and_minutes() -> None:
    assert domain.format_when("2026-11-28T18:00:00Z") == "Sat 28 Nov 2026, 18:00 UTC"  # no place: UTC, saying so
    assert domain.format_when("2026-11-28T19:00:00+01:00") == "Sat 28 Nov 2026, 18:00 UTC"
    assert domain.format_when("2026-12-01T11:25:00Z", "Asia/Kolkata") == "Tue 01 Dec 2026, 16:55 IST"
    assert domain.format_clock("2026-12-01T11:25:00Z", "Asia/Kolkata") == "16:55 IST"
    assert domain.format_clock("2026-12-01T11:25:00Z") == "11:25"
    assert domain.format_day("2026-12-01T20:00:00Z", "Asia/Kolkata") == "Wed 02 Dec"  # after midnight in India
    assert domain.format_duration("2026-12-01T11:25:00Z", "2026-12-02T03:05:00Z") == "15h 40m"
    assert domain.format_duration("2026-12-01T11:25:00Z", "2026-12-01T11:50:00Z") == "25m"


def test_the_countdown_never_ends_before_the_hold() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    left = domain.seconds_left(now + timedelta(seconds=2.2), now)
    assert 2.1 < left < 2.3
    assert domain.countdown_label(left) == "0:03"
    assert domain.countdown_label(599.0) == "9:59"
    assert domain.seconds_left(now - timedelta(seconds=5), now) == 0
    assert domain.countdown_label(0) == "0:00"


def test_a_csrf_token_is_accepted_only_when_the_form_repeats_our_signed_cookie() -> None:
    token = domain.new_csrf_token(SECRET)
    assert domain.csrf_accepts(SECRET, token, token)
    assert not domain.csrf_accepts(SECRET, token, domain.new_csrf_token(SECRET))
    assert not domain.csrf_accepts(SECRET, token, None)
    assert not domain.csrf_accepts(SECRET, None, token)
    forged = "attacker-nonce.0123456789abcdef0123456789abcdef"
    assert not domain.csrf_accepts(SECRET, forged, forged)
    assert not domain.csrf_accepts(b"another-secret", token, token)


def test_origin_checks_and_safe_redirects() -> None:
    assert domain.same_origin(None, "boxoffice.test")
    assert domain.same_origin("http://boxoffice.test", "boxoffice.test")
    assert not domain.same_origin("https://evil.example", "boxoffice.test")
    assert not domain.same_origin("null", "boxoffice.test")
    assert domain.safe_next("/events/1?x=2") == "/events/1?x=2"
    for target in ("//evil.example", "https://evil.example", "/\\evil.example", "", None, "events"):
        assert domain.safe_next(target) == "/"


def test_api_problems_become_friendly_messages() -> None:
    declined = domain.problem_from_body(402, {"type": "/problems/payment-declined", "title": "Payment declined",
                                              "status": 402, "detail": "The card was declined.",
                                              "decline_code": "insufficient_funds"})
    assert declined.slug == "payment-declined"
    assert "insufficient funds" in domain.friendly_message(declined)
    taken = domain.problem_from_body(409, {"type": "/problems/seat-unavailable", "detail": "taken"})
    assert "taken meanwhile" in domain.friendly_message(taken)
    unknown = domain.problem_from_body(422, {"type": "/problems/weak-password", "detail": "Choose another password."})
    assert domain.friendly_message(unknown) == "Choose another password."
    assert "our side" in domain.friendly_message(domain.problem_from_body(502, "<html>bad gateway</html>"))


def test_row_labels_and_stations_typed_by_people() -> None:
    assert domain.parse_row_labels("A-D") == ["A", "B", "C", "D"]
    assert domain.parse_row_labels("a, b  c, A") == ["A", "B", "C"]
    assert domain.parse_row_labels("1-3") == ["1", "2", "3"]
    stations = [Station(code="NDLS", name="New Delhi", city="New Delhi"),
                Station(code="BRC", name="Vadodara Junction", city="Vadodara")]
    assert domain.resolve_station("ndls", stations) == "NDLS"
    assert domain.resolve_station("Vadodara Junction", stations) == "BRC"
    assert domain.resolve_station("Vadodara", stations) == "BRC"
    assert domain.resolve_station("Vadodara Junction (BRC)", stations) == "BRC"
    assert domain.resolve_station("Atlantis", stations) is None


def test_a_venue_seat_map_puts_every_seat_once_in_its_row() -> None:
    sections = [Section(id="s1", name="Stalls", price=10, capacity=10, available=10),
                Section(id="s2", name="Box", price=10, capacity=3, available=3)]
    seats = [Seat(id=f"{sec}-{row}{n}", section_id=sec, row=row, number=n, label=f"{row}-{n}",
                  status="sold" if n == 2 else "available")
             for sec, rows, per_row in (("s1", "AB", 5), ("s2", "A", 3)) for row in rows for n in range(1, per_row + 1)]
    layout = seatmap.layout_venue(sections, list(reversed(seats)))
    assert sorted(s.id for s in layout.seats) == sorted(s.id for s in seats)
    row_a = [s for s in layout.seats if s.id.startswith("s1-A")]
    assert [s.label for s in sorted(row_a, key=lambda s: s.x)] == ["A-1", "A-2", "A-3", "A-4", "A-5"]
    assert len({(s.x, s.y) for s in layout.seats}) == len(seats)
    assert all(0 <= s.x < layout.width and 0 <= s.y < layout.height for s in layout.seats)
    assert [t.text for t in layout.titles] == ["Stalls", "Box"]
    assert seatmap.unavailable_seats(seats) == {s.id: "sold" for s in seats if s.number == 2}


def test_a_coach_layout_has_an_aisle_and_no_overlaps() -> None:
    seats = [CoachSeat(id=str(i), label=f"B1-{i}") for i in range(1, 65)]
    layout = seatmap.layout_coach(seats)
    assert len({(s.x, s.y) for s in layout.seats}) == 64
    assert all(s.x + seatmap.SEAT <= layout.width and s.y + seatmap.SEAT <= layout.height for s in layout.seats)


def test_only_a_uuid_is_an_id() -> None:
    assert domain.is_id("0196b5c2-7d3e-7a10-8f00-1234567890ab")
    assert domain.is_id("0196B5C2-7D3E-7A10-8F00-1234567890AB")
    for bad in ("", "\x00", "\x01", "42", "0196b5c2-7d3e-7a10-8f00-1234567890ab\x00", "../admin",
                "0196b5c27d3e7a108f001234567890ab", "{0196b5c2-7d3e-7a10-8f00-1234567890ab}"):
        assert not domain.is_id(bad), repr(bad)


@given(st.text(max_size=40))
def test_a_path_segment_never_leaves_its_place(segment: str) -> None:
    path = at("/api/holds/{}/x", segment)
    assert path.startswith("/api/holds/") and path.endswith("/x")
    inner = path.removeprefix("/api/holds/").removesuffix("/x")
    assert "/" not in inner and "?" not in inner and "#" not in inner
    assert all(32 < ord(ch) < 127 for ch in inner)


@given(st.text(max_size=50), st.text(max_size=50))
def test_a_session_cookie_round_trips_and_garbage_is_no_session(access: str, refresh: str) -> None:
    tokens = domain.Tokens(access, refresh)
    assert domain.Tokens.decode(tokens.encode()) == tokens
    assert domain.Tokens.decode("not base64 json!") is None
    assert domain.Tokens.decode("") is None

