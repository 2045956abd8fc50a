"""Opaque cursors: what the API gives out comes back; anything else is an InvalidCursor (a 400), never a crash."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxoffice.platform.pagination import (
    InvalidCursor,
    decode_cursor,
    decode_id_cursor,
    encode_cursor,
    encode_id_cursor,
)

UUID = "0190f1c2-8a7b-7c3d-9e4f-5a6b7c8d9e0f"


@given(st.datetimes(timezones=st.just(timezone(timedelta(hours=5, minutes=30)))), st.uuids())
def test_time_cursors_round_trip_in_utc(when: datetime, item_id: uuid.UUID) -> None:
    key, back = decode_cursor(encode_cursor(when, str(item_id)), datetime)
    assert key == when and key.tzinfo == UTC and back == str(item_id)


@given(st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=50))
def test_number_and_text_keys_round_trip(number: float, text: str) -> None:
    assert decode_cursor(encode_cursor(number, UUID), float) == (number, UUID)
    assert decode_cursor(encode_cursor(text, UUID), str) == (text, UUID)


def test_id_cursors_round_trip() -> None:
    assert decode_id_cursor(encode_id_cursor(UUID)) == UUID
    with pytest.raises(InvalidCursor):
        decode_id_cursor(encode_id_cursor("x"))


@given(st.text(max_size=80))
def test_any_text_is_a_cursor_or_an_invalid_cursor(text: str) -> None:
    for kind in (datetime, str, float):
        try:
            decode_cursor(text, kind)
        except InvalidCursor as refused:
            assert refused.status == 400 and refused.slug == "invalid-cursor"


@given(st.binary(max_size=80))
def test_any_bytes_in_base64_are_a_cursor_or_an_invalid_cursor(raw: bytes) -> None:
    text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    for kind in (datetime, str, float):
        try:
            decode_cursor(text, kind)
        except InvalidCursor:
            pass


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        b64("2020-01-01|x"),
        b64('["2020-01-01", "' + UUID + '"]'),  # naive
        b64('["2020-02-30T00:00:00+00:00", "' + UUID + '"]'),
        b64('["2020-01-01T00:00:00+00:00", "x"]'),
        b64('["2020-01-01T00:00:00+00:00", "' + UUID.upper() + '"]'),
        b64('["2020-01-01T00:00:00+00:00"]'),
        b64("[1e400, 1]"),
        "!!!!",
        "a",
    ],
)
def test_crafted_time_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, datetime)


def test_a_cursor_of_another_kind_is_refused() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor("name", UUID), float)
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(1.5, UUID), datetime)
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(datetime.now(UTC)), datetime)  # an id was expected
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(datetime.now(UTC), UUID), datetime, ids="none")
