"""Tracking's rules without I/O: batch validation, the per-client bucket, bot rates, cursors, pages, agents,
and the size of the tracker script."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import rjsmin
from hypothesis import given
from hypothesis import strategies as st

from boxoffice.platform.pagination import InvalidCursor
from boxoffice.tracking import domain, store
from boxoffice.tracking.domain import Cursor, Limits, RateWatch, TokenBucket, parse_batch
from boxoffice.tracking.enrich import parse_agent

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_events=500, max_bytes=65_536, retention=timedelta(days=30))
TRACKER = Path(__file__).resolve().parents[2] / "src" / "boxoffice" / "web" / "static" / "tracker.js"


def event(**overrides: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "page_view",
        "ts": NOW.isoformat(),
        "anonymous_id": "a-1",
        "session_id": "s-1",
        "url": "https://shop.example/events",
        **overrides,
    }


def body(*events: Any, **extra: Any) -> bytes:
    return json.dumps({"sent_at": NOW.isoformat(), "events": list(events), **extra}).encode()


def test_a_batch_keeps_the_valid_events_and_rejects_the_others_by_index() -> None:
    good = event()
    parsed = parse_batch(
        body(
            good,
            "not an object",
            event(type="hover"),
            event(ts="2026-11-28T12:00:00"),  # no zone
            event(ts=(NOW - timedelta(days=31)).isoformat()),
            event(ts=(NOW + timedelta(days=2)).isoformat()),
            event(url="ftp://x/y"),
            event(type="custom"),
            event(session_id="has spaces"),
            dict(good),  # the same event twice in one batch
            event(props={"x": "y" * 5000}),
            event(type="custom", name="seat-picked", props={"seat": "A-1"}, extra_field="ignored"),
        ),
        limits=LIMITS,
        now=NOW,
    )
    events = parsed.accepted
    assert [e["event_id"] for e in events] == [good["event_id"], events[1]["event_id"]]
    assert events[0] == good  # what the client sent travels on, as sent
    assert events[1].get("name") == "seat-picked" and "extra_field" not in events[1]  # unknown fields are dropped
    assert [index for index, _ in parsed.rejected] == list(range(1, 11))
    reasons = dict(parsed.rejected)
    assert reasons[1] == "Input should be an object"
    assert reasons[2] == "type: must be one of page_view, click, form_submit, custom"
    assert reasons[3] == "ts: must be an RFC 3339 date and time with its zone"
    assert reasons[4] == "ts: older than the retention period"
    assert reasons[5] == "ts: too far in the future"
    assert reasons[6] == "url: must be an http(s) URL"
    assert reasons[7] == "name: a custom event needs a name"
    assert reasons[8] == "session_id: must be 1 to 64 letters, digits or _.:-"
    assert reasons[9] == "event_id: repeated within the batch"
    assert reasons[10] == "props: props must stay under 4096 bytes"


def test_a_valid_batch_is_read_in_one_pass_and_event_ids_are_lower_cased() -> None:
    upper = event(event_id=str(uuid.uuid4()).upper(), element={"tag": "a", "text": "Buy"}, user_id=None)
    parsed = parse_batch(body(upper, event(ts="2026-11-28T13:00:00.123456789+01:00")), limits=LIMITS, now=NOW)
    assert parsed.rejected == []
    assert parsed.accepted[0]["event_id"] == upper["event_id"].lower()
    assert parsed.accepted[0].get("element") == {"tag": "a", "text": "Buy"}
    assert domain.parse_time(parsed.accepted[1]["ts"]) == datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


def test_props_that_could_not_travel_are_rejected_not_an_error() -> None:
    huge = b'{"events": [%s]}' % json.dumps(event(props={"n": 1})).replace('"n": 1', '"n": 123456789012345678901234567890').encode()
    parsed = parse_batch(huge, limits=LIMITS, now=NOW)
    assert parsed.rejected == [(0, "props: props must hold only JSON values of common sizes")]
    with pytest.raises(domain.MalformedBatch):  # valid JSON for pydantic, not for orjson: refused, not a 500
        parse_batch(b'{"events": [{"props": {"x": 1e400}}]}', limits=LIMITS, now=NOW)


def test_a_date_that_does_not_exist_is_rejected_not_an_error() -> None:
    parsed = parse_batch(body(event(ts="2026-02-30T12:00:00Z"), event()), limits=LIMITS, now=NOW)
    assert parsed.rejected == [(0, "ts: not a valid date and time")] and len(parsed.accepted) == 1


def test_batches_over_the_limits_are_refused_whole() -> None:
    with pytest.raises(domain.BatchTooLarge):
        parse_batch(body(*[event() for _ in range(501)]), limits=LIMITS, now=NOW)
    with pytest.raises(domain.BatchTooLarge):
        parse_batch(b" " * 65_537, limits=LIMITS, now=NOW)
    for bad in (b"", b"{", b"\xff"):
        with pytest.raises(domain.MalformedBatch):
            parse_batch(bad, limits=LIMITS, now=NOW)
    for wrong in (b"[]", b'{"events": 3}', b'{"sent_at": "yesterday", "events": []}'):
        with pytest.raises(domain.InvalidBatch):
            parse_batch(wrong, limits=LIMITS, now=NOW)
    nothing_valid = parse_batch(b'{"events": [{}, 3]}', limits=LIMITS, now=NOW)
    assert nothing_valid.accepted == [] and [i for i, _ in nothing_valid.rejected] == [0, 1]


def test_the_bucket_lets_a_burst_through_then_asks_to_wait() -> None:
    bucket = TokenBucket(rate=10, burst=40)
    assert bucket.take("ip-1", 20, now=0.0) == 0
    assert bucket.take("ip-1", 20, now=0.0) == 0
    wait = bucket.take("ip-1", 20, now=0.0)
    assert wait == pytest.approx(2.0)
    assert domain.retry_after(wait) == 2
    assert bucket.take("ip-2", 20, now=0.0) == 0  # another client has its own bucket
    assert bucket.take("ip-1", 20, now=2.0) == 0  # refilled at 10 per second
    assert bucket.take("ip-1", 500, now=100.0) == 0  # a batch above the burst passes on a full bucket


@given(st.lists(st.tuples(st.floats(0, 5), st.integers(1, 60)), max_size=60))
def test_the_bucket_never_allows_more_than_burst_plus_refill(steps: list[tuple[float, int]]) -> None:
    bucket = TokenBucket(rate=10, burst=40)
    now, allowed = 0.0, 0
    for gap, cost in steps:
        now += gap
        if bucket.take("c", cost, now) == 0:
            allowed += min(cost, 40)
    assert allowed <= 40 + 10 * now + 1e-6


def test_the_bucket_forgets_clients_that_are_full_again() -> None:
    bucket = TokenBucket(rate=10, burst=40, max_clients=1000)
    for n in range(100):
        bucket.take(f"ip-{n}", 1, now=0.0)
    bucket.take("late", 1, now=10.0)
    assert len(bucket._clients) == 1


def test_a_session_faster_than_a_person_is_flagged_from_then_on() -> None:
    watch = RateWatch(max_per_minute=5)
    flags = [watch.observe("s", NOW + timedelta(seconds=i)) for i in range(7)]
    assert flags == [False] * 5 + [True, True]
    assert watch.observe("s", NOW + timedelta(minutes=10)) is True
    assert watch.observe("other", NOW) is False


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
       st.uuids())
def test_cursors_round_trip(ts: datetime, event_id: uuid.UUID) -> None:
    cursor = Cursor(ts, str(event_id))
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("garbage", ["", "x", "not|base64!", "MjAyNi0xMS0yOA"])
def test_foreign_cursors_are_refused(garbage: str) -> None:
    with pytest.raises(InvalidCursor):
        Cursor.decode(garbage)


@pytest.mark.parametrize(
    ("url", "subject"),
    [
        ("https://shop.example/events/ev-1", ("event", "ev-1")),
        ("https://shop.example/events/ev-1/?utm=x", ("event", "ev-1")),
        ("https://shop.example/trains/runs/r-9", ("run", "r-9")),
        ("https://shop.example/events", None),
        ("https://shop.example/events/ev-1/checkout", None),
        ("https://shop.example/trains", None),
    ],
)
def test_pages_about_an_event_or_a_run_say_which(url: str, subject: tuple[str, str] | None) -> None:
    assert domain.page_subject(url) == subject


def test_ranges_with_too_many_buckets_are_refused() -> None:
    domain.check_range(NOW - timedelta(days=7), NOW, "minute")
    with pytest.raises(domain.InvalidRange):
        domain.check_range(NOW - timedelta(days=30), NOW, "minute")
    with pytest.raises(domain.InvalidRange):
        domain.check_range(NOW, NOW, "day")


@pytest.mark.parametrize(
    ("agent", "browser", "os", "device", "bot"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
         "Firefox", "Windows", "desktop", False),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
         "Mobile Safari/537.36", "Chrome Mobile", "Android", "mobile", False),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 "
         "Mobile/15E148 Safari/604.1", "Mobile Safari", "iOS", "tablet", False),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bingbot", "Other", "bot", True),
        ("curl/8.5.0", "curl", "Other", "bot", True),
        ("", "unknown", "unknown", "unknown", False),
    ],
)
def test_user_agents_are_read(agent: str, browser: str, os: str, device: str, bot: bool) -> None:
    parsed = parse_agent(agent)
    assert (parsed.browser, parsed.os, parsed.device, parsed.is_bot) == (browser, os, device, bot)


def test_the_tracker_is_under_5_kb_minified_and_gzipped() -> None:
    """Measured as served: minified with rjsmin, then gzip at level 9."""
    minified = rjsmin.jsmin(TRACKER.read_text())
    size = len(gzip.compress(minified.encode(), compresslevel=9))
    assert size < 5 * 1024, size


@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.sampled_from(["python", "javascript", "offset", "seconds", "minutes"]),
)
def test_the_stored_text_of_a_time_is_the_same_whichever_way_it_is_made(moment: datetime, shape: str) -> None:
    """The processor cuts SQLite's text out of the common RFC 3339 shapes instead of formatting the datetime."""
    text = {
        "python": moment.isoformat(),
        "javascript": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "offset": moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
        "seconds": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "minutes": moment.isoformat(timespec="minutes"),
    }[shape]
    parsed = domain.parse_time(text)
    assert parsed is not None
    encode = store.time_encoder("sqlite")
    assert encode(text, parsed) == store.sqlite_time(parsed)
    assert encode(text, parsed) == parsed.replace(tzinfo=None).isoformat(" ", "microseconds")
