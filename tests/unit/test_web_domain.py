"""The web front end's pure rules: money and time formatting, countdowns, CSRF tokens, friendly errors."""

from __future__ import annotations

import itertools
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
    for target in ("//evil.example", "https://evil.example", "/\\evil.example", "", None, "events",
                   "/\t/evil.example", "/\n/evil.example", "/ /evil.example", "/\x00", "/\x7f/x", "/" + "a" * 2001):
        assert domain.safe_next(target) == "/", target


def test_a_sealed_choice_opens_only_for_the_same_browser_unaltered_and_in_time() -> None:
    secret, now = b"s" * 32, datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    token = domain.seal_choice(secret, "csrf-of-this-browser", '{"event_id": "e1", "quantity": 2}', now=now)
    assert domain.open_choice(secret, "csrf-of-this-browser", token, now=now) == '{"event_id": "e1", "quantity": 2}'
    soon = now + timedelta(seconds=domain.CHOICE_SECONDS - 1)
    assert domain.open_choice(secret, "csrf-of-this-browser", token, now=soon) is not None
    late = now + timedelta(seconds=domain.CHOICE_SECONDS + 1)
    assert domain.open_choice(secret, "csrf-of-this-browser", token, now=late) is None
    assert domain.open_choice(secret, "csrf-of-another-browser", token, now=now) is None
    assert domain.open_choice(b"t" * 32, "csrf-of-this-browser", token, now=now) is None
    assert domain.open_choice(secret, None, token, now=now) is None
    body, signature = token.split(".")
    altered = domain.seal_choice(secret, "x", '{"event_id": "e1", "quantity": 9}', now=now).split(".")[0]
    for forged in (f"{altered}.{signature}", body, f"{body}.", "a.b.c", "", "%%%.abc", "x" * 5000):
        assert domain.open_choice(secret, "csrf-of-this-browser", forged, now=now) is None, forged


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
    # Each seat shows its number and its section's colour; row letters stand at both ends of a row.
    assert {(s.section, s.tone) for s in layout.seats} == {("Stalls", "s0"), ("Box", "s1")}
    assert sorted(s.number for s in row_a) == ["1", "2", "3", "4", "5"]
    assert [lbl.text for lbl in layout.labels].count("A") == 4  # two rows A (one per section), both ends
    assert seatmap.unavailable_seats(seats) == {s.id: "sold" for s in seats if s.number == 2}


def _inside_and_apart(layout: seatmap.SeatMapLayout) -> None:
    assert all(s.x >= 0 and s.x + s.w <= layout.width and s.y >= 0 and s.y + s.h <= layout.height
               for s in layout.seats)
    for a in layout.seats:
        for b in layout.seats:
            if a is not b:
                assert a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y, (a, b)


def test_a_sleeper_coach_shows_each_berth_where_it_is() -> None:
    seats = [CoachSeat(id=str(i), label=f"B1-{i}") for i in range(1, 65)]
    layout = seatmap.layout_coach(seats, "3A")
    assert layout.kind == "berths" and len(layout.seats) == 64
    _inside_and_apart(layout)
    by_number = {s.number: s for s in layout.seats}
    assert [by_number[str(n)].note for n in range(1, 9)] == ["LB", "MB", "UB", "LB", "MB", "UB", "SL", "SU"]
    assert by_number["9"].note == "LB" and by_number["9"].x > by_number["4"].x  # the next bay
    assert by_number["3"].y < by_number["2"].y < by_number["1"].y  # upper above middle above lower
    assert by_number["7"].y > by_number["1"].y  # side berths across the aisle
    two_tier = seatmap.layout_coach([CoachSeat(id=str(i), label=f"A1-{i}") for i in range(1, 47)], "2A")
    _inside_and_apart(two_tier)
    assert [s.note for s in two_tier.seats[:6]] == ["LB", "UB", "LB", "UB", "SL", "SU"]
    assert "lower berth" in by_number["1"].description


def test_a_chair_car_marks_window_seats_and_has_an_aisle() -> None:
    seats = [CoachSeat(id=str(i), label=f"C1-{i}") for i in range(1, 79)]
    layout = seatmap.layout_coach(seats, "CC")  # 3 + 2 across
    assert layout.kind == "chairs"
    _inside_and_apart(layout)
    row = [s for s in layout.seats if int(s.number) <= 5]
    assert [s.note for s in row] == ["W", "", "", "", "W"]
    gaps = [b.y - a.y for a, b in itertools.pairwise(row)]
    assert gaps[2] > gaps[0]  # the aisle between seats 3 and 4
    assert [s.description for s in row] == ["window seat", "middle seat", "aisle seat", "aisle seat", "window seat"]
    plain = seatmap.layout_coach([CoachSeat(id=str(i), label=f"11-{i}") for i in range(1, 77)], "standard")
    _inside_and_apart(plain)
    assert len({(s.x, s.y) for s in plain.seats}) == 76


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

