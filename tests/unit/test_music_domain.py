"""Music's rules without I/O: playlist positions, limits, versions, search terms, cursors, demo data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxoffice.music import demo, domain
from boxoffice.music.domain import (
    MAX_TRACKS,
    KnownEvent,
    PlaylistFull,
    PositionOutOfRange,
    VersionMismatch,
    VersionRequired,
)
from boxoffice.platform.pagination import InvalidCursor

ids = st.lists(st.sampled_from("abcdefgh"), max_size=30)


@given(ids, st.sampled_from("xyz"), st.data())
def test_inserting_puts_the_track_at_its_position_and_shifts_the_rest(tracks: list[str], new: str,
                                                                      data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(tracks)))
    result = domain.insert_track(tracks, new, position)
    assert len(result) == len(tracks) + 1
    assert result[position] == new
    assert result[:position] == tracks[:position] and result[position + 1 :] == tracks[position:]


@given(ids.filter(bool), st.data())
def test_removing_leaves_no_gap(tracks: list[str], data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(tracks) - 1))
    result = domain.remove_track(tracks, position)
    assert result == tracks[:position] + tracks[position + 1 :]


def test_positions_outside_the_list_are_refused() -> None:
    assert domain.insert_track(["a"], "b", None) == ["a", "b"]
    with pytest.raises(PositionOutOfRange):
        domain.insert_track(["a"], "b", 2)
    with pytest.raises(PositionOutOfRange):
        domain.remove_track(["a"], 1)
    with pytest.raises(PositionOutOfRange):
        domain.remove_track([], 0)


def test_a_playlist_holds_at_most_a_thousand_tracks() -> None:
    assert len(domain.replace_tracks(["t"] * MAX_TRACKS)) == MAX_TRACKS
    with pytest.raises(PlaylistFull):
        domain.replace_tracks(["t"] * (MAX_TRACKS + 1))
    with pytest.raises(PlaylistFull):
        domain.insert_track(["t"] * MAX_TRACKS, "u", None)
    with pytest.raises(PlaylistFull):
        domain.insert_track(["t"] * 3, "u", 0, limit=3)


def test_versions() -> None:
    domain.check_version(3, 3, required=True)
    domain.check_version(3, None, required=False)
    with pytest.raises(VersionMismatch) as stale:
        domain.check_version(4, 3, required=False)
    assert stale.value.status == 412 and stale.value.extra["version"] == 4
    with pytest.raises(VersionRequired):
        domain.check_version(3, None, required=True)
    assert [domain.parse_if_match(v) for v in ("3", '"3"', 'W/"3"', None, " ")] == [3, 3, 3, None, None]
    with pytest.raises(domain.Unprocessable):
        domain.parse_if_match("*")


def test_search_terms_never_reach_the_engine_as_syntax() -> None:
    assert domain.search_terms('Blue "moon" OR NEAR(x*) blue') == ("blue", "moon", "or", "near", "x")
    assert domain.fts5_query(("blue", "moon")) == '"blue"* "moon"*'
    assert domain.tsquery(("blue", "moon")) == "blue:* & moon:*"
    assert domain.search_terms("  ") == () and domain.search_terms(None) == ()


@given(st.one_of(st.text(max_size=30), st.floats(allow_nan=False, allow_infinity=False)), st.uuids())
def test_cursors_round_trip(key: str | float, item_id: uuid.UUID) -> None:
    kind = str if isinstance(key, str) else float
    assert domain.decode_cursor(domain.encode_cursor(key, str(item_id)), kind) == (key, str(item_id))


def test_foreign_cursors_are_refused() -> None:
    for cursor in ("nope", domain.encode_cursor("name", str(uuid.uuid4()))):
        with pytest.raises(InvalidCursor):
            domain.decode_cursor(cursor, float)


def test_lineup_playlists_take_each_artists_most_popular_tracks_in_lineup_order() -> None:
    first = domain.Artist("a1", "First", ("jazz",), "NL", 50)
    second = domain.Artist("a2", "Second", ("jazz",), "NL", 50)

    def track(tid: str, artist: domain.Artist, popularity: int) -> domain.Track:
        return domain.Track(tid, tid, artist.id, artist.name, "", 100, "jazz", popularity)

    tracks = [track("low", first, 1), track("top", first, 99), track("s", second, 5), track("mid", first, 50)]
    chosen = domain.top_tracks([second, first], tracks, per_artist=2)
    assert [t.id for t in chosen] == ["s", "top", "mid"]


def test_demo_data_is_plentiful_deterministic_and_covers_the_demo_events() -> None:
    artists = demo.demo_artists()
    tracks = demo.demo_tracks(artists)
    assert len(artists) >= 50 and len(tracks) >= 300
    assert len({a.id for a in artists}) == len(artists) and len({t.id for t in tracks}) == len(tracks)
    assert len({g for a in artists for g in a.genres}) >= 8
    assert demo.demo_tracks(demo.demo_artists()) == tracks
    when = datetime(2026, 12, 1, tzinfo=UTC)
    for name, genres in demo.EVENT_GENRES.items():
        category = "festival" if name in ("Lowlands Winter Edition", "Sunburn Goa", "Primavera Weekender",
                                          "Jazz Fest Brussels") else "concert"
        lineup = demo.demo_lineup(KnownEvent("e", name, category, "v", "c", when), artists)
        assert len(lineup) == demo.LINEUP_SIZE[category], name
        chosen = [a for a in artists if a.id in lineup]
        assert all(set(a.genres) & set(genres) for a in chosen)
    assert demo.demo_lineup(KnownEvent("e", "Hamlet", "theatre", "v", "c", when), artists) == []
