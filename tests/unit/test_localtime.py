"""Local times: UTC stored, the place's time shown with its zone's abbreviation."""

from __future__ import annotations

from datetime import UTC, datetime

from boxoffice.platform.localtime import format_local, is_zone, parse_utc


def test_a_utc_time_is_shown_in_the_zone_of_the_place_with_its_abbreviation() -> None:
    rajdhani = "2026-12-01T11:25:00Z"
    assert format_local(rajdhani, "Asia/Kolkata") == "Tue 01 Dec 2026, 16:55 IST"
    assert format_local(rajdhani, "Europe/Amsterdam") == "Tue 01 Dec 2026, 12:25 CET"
    assert format_local(datetime(2027, 7, 1, 18, 0, tzinfo=UTC), "Europe/London") == "Thu 01 Jul 2027, 19:00 BST"
    assert format_local(rajdhani, None) == "Tue 01 Dec 2026, 11:25 UTC"
    assert format_local(rajdhani, "Not/AZone") == "Tue 01 Dec 2026, 11:25 UTC"  # a page never fails on a zone
    assert format_local(None, "Asia/Kolkata") == "-"


def test_only_iana_zone_names_are_zones() -> None:
    assert is_zone("Asia/Kolkata") and is_zone("UTC") and is_zone("America/Argentina/Buenos_Aires")
    for name in ("", "Mars/Olympus", "../../etc/passwd", "/etc/localtime", "Asia\\Kolkata", "x" * 80):
        assert not is_zone(name), name


def test_parse_utc_reads_rfc3339_and_refuses_the_rest() -> None:
    assert parse_utc("2026-12-01T11:25:00Z") == datetime(2026, 12, 1, 11, 25, tzinfo=UTC)
    assert parse_utc("yesterday") is None and parse_utc(42) is None
