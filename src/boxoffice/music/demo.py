"""Demo data: 60 (fictional) artists across ten genres, six tracks each, and line-ups for the demo events.

Everything is derived from the names below, so every process and every run builds the same catalogue with
the same ids (uuid5): two processes seeding at once insert the same rows, and the second insert is ignored.
Line-ups are chosen when music learns an event from ``catalog.event-published``: a concert or festival
whose name is one of catalog's demo events (or names a genre) gets artists of its genres, picked by a hash of
the event's and the artists' names.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence

from boxoffice.music.domain import Artist, KnownEvent, Track

NAMESPACE = uuid.UUID("8f7f2c1e-5b0a-4f7e-9a51-0d3b2c6e9a10")
TRACKS_PER_ARTIST = 6

# (name, genres, country)
ARTISTS: list[tuple[str, tuple[str, ...], str]] = [
    ("Aurora Vale", ("pop", "electronic"), "NO"), ("The Paper Kites of Utrecht", ("indie", "folk"), "NL"),
    ("Marlow Reed", ("pop",), "GB"), ("Neon Parade", ("pop", "electronic"), "US"),
    ("Silver Lanterns", ("indie",), "IE"), ("Juno & The Tides", ("indie", "rock"), "AU"),
    ("Kestrel Avenue", ("rock",), "GB"), ("Iron Orchard", ("rock",), "DE"), ("Static Bloom", ("rock", "indie"), "US"),
    ("Velvet Tramlines", ("indie",), "NL"), ("Harbour Lights", ("folk",), "IE"), ("Wren Hollow", ("folk",), "CA"),
    ("Oskar Lindqvist Trio", ("jazz",), "SE"), ("Blue Hour Collective", ("jazz",), "US"),
    ("Ada Moretti Quartet", ("jazz",), "IT"), ("Lucien Marchand", ("jazz", "classical"), "FR"),
    ("Nadia Okafor", ("jazz", "r&b"), "NG"), ("Sofia Brandt", ("classical",), "DE"),
    ("Berliner Kammerensemble", ("classical",), "DE"), ("Elena Petrova", ("classical",), "BG"),
    ("Amsterdam Strings", ("classical",), "NL"), ("Milo Sandoval", ("classical", "jazz"), "ES"),
    ("Kavya Iyer", ("bollywood", "pop"), "IN"), ("Arjun Mehra", ("bollywood",), "IN"),
    ("Rhea & The Monsoon", ("bollywood", "folk"), "IN"), ("Tabla Circuit", ("bollywood", "electronic"), "IN"),
    ("Zubin Kapoor", ("bollywood", "r&b"), "IN"), ("Meera Sen", ("bollywood", "classical"), "IN"),
    ("Pulse Theory", ("electronic",), "NL"), ("Nightwave Society", ("electronic",), "DE"),
    ("Kaia Sol", ("electronic", "pop"), "ES"), ("Deep Coral", ("electronic",), "BE"),
    ("Goa Sunrise Project", ("electronic",), "IN"), ("Lumen Drift", ("electronic", "indie"), "FR"),
    ("Rico Vance", ("hip-hop",), "US"), ("Lady Sable", ("hip-hop", "r&b"), "GB"),
    ("Twelve Blocks", ("hip-hop",), "FR"), ("MC Delta", ("hip-hop",), "NL"),
    ("Priya Rao", ("hip-hop", "bollywood"), "IN"), ("Amara Jones", ("r&b",), "US"),
    ("Soulfield", ("r&b", "jazz"), "GB"), ("Honey Avenue", ("r&b", "pop"), "CA"), ("Leo Brightman", ("pop",), "AU"),
    ("Cassie Moon", ("pop",), "US"), ("The Northern Lines", ("rock", "indie"), "GB"),
    ("Granite Sky", ("rock",), "NO"), ("Ember Falls", ("rock",), "CA"), ("Mira Holm", ("folk", "indie"), "DK"),
    ("The Willow Sessions", ("folk",), "GB"), ("Old Pine Radio", ("folk", "rock"), "US"),
    ("Fado Novo", ("folk",), "PT"), ("Bruxelles Swing Unit", ("jazz",), "BE"),
    ("Catalina Ruiz", ("pop", "folk"), "ES"), ("Orchestra del Mare", ("classical",), "IT"),
    ("Sable & Stone", ("indie",), "US"), ("Polar Static", ("electronic", "rock"), "FI"),
    ("Yara Haddad", ("pop", "r&b"), "LB"), ("Tomás Ferreira", ("jazz",), "BR"),
    ("Midnight Rickshaw", ("indie", "bollywood"), "IN"), ("Lowland Echoes", ("electronic", "indie"), "NL"),
]

_FIRST = ["Golden", "Paper", "Neon", "Silent", "Electric", "Wild", "Velvet", "Broken", "Midnight", "Summer",
          "Distant", "Crimson", "Hollow", "Silver", "Northern", "Gentle", "Restless", "Burning", "Quiet", "Endless"]
_SECOND = ["Harbour", "Skies", "Rivers", "Hearts", "Streets", "Lights", "Horizon", "Letters", "Gardens", "Tides",
           "Roads", "Echoes", "Mirrors", "Fires", "Stations", "Windows", "Dreams", "Shadows", "Bridges", "Waves"]
_ALBUMS = ["First Light", "Open Water", "Late Arrivals", "City of Glass", "The Long Way Home", "Undertow",
           "Northern Songs", "Small Hours", "Afterglow", "Field Recordings"]

# Catalog's demo concerts and festivals (by name) and the genres their line-ups take.
EVENT_GENRES: dict[str, tuple[str, ...]] = {
    "Aurora Nights Live": ("pop", "electronic"),
    "The Lumineers Unplugged": ("folk", "indie"),
    "Symphony No. 9 - Berliner Abend": ("classical",),
    "Indie Rooftop Sessions": ("indie",),
    "AR Rahman Live": ("bollywood",),
    "Jazz at Blue Note": ("jazz",),
    "Lowlands Winter Edition": ("indie", "rock", "electronic"),
    "Sunburn Goa": ("electronic",),
    "Primavera Weekender": ("indie", "pop", "hip-hop"),
    "Jazz Fest Brussels": ("jazz", "r&b"),
}
GENRE_WORDS = ("jazz", "rock", "indie", "folk", "pop", "classical", "electronic", "hip-hop")
LINEUP_SIZE = {"concert": 3, "festival": 8}


def _hash(*parts: str) -> int:
    return zlib.crc32("|".join(parts).encode())


def artist_id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"artist:{name}"))


def demo_artists() -> list[Artist]:
    return [
        Artist(artist_id(name), name, genres, country, 40 + _hash(name) % 60) for name, genres, country in ARTISTS
    ]


def demo_tracks(artists: Sequence[Artist]) -> list[Track]:
    tracks: list[Track] = []
    for artist in artists:
        seed = _hash(artist.name)
        album = _ALBUMS[seed % len(_ALBUMS)]
        for n in range(TRACKS_PER_ARTIST):
            first = _FIRST[(seed + 7 * n) % len(_FIRST)]
            second = _SECOND[(seed // 7 + 3 * n) % len(_SECOND)]
            title = f"{first} {second}"
            tracks.append(Track(
                id=str(uuid.uuid5(NAMESPACE, f"track:{artist.name}:{n}")),
                title=title,
                artist_id=artist.id,
                artist_name=artist.name,
                album=album if n < 4 else f"{album} (Deluxe)",
                duration_s=150 + _hash(artist.name, title) % 180,
                genre=artist.genres[n % len(artist.genres)],
                popularity=_hash(title, artist.name) % 100,
            ))
    return tracks


def lineup_genres(event: KnownEvent) -> tuple[str, ...]:
    if event.category not in LINEUP_SIZE:
        return ()
    if event.name in EVENT_GENRES:
        return EVENT_GENRES[event.name]
    lowered = event.name.lower()
    return tuple(g for g in GENRE_WORDS if g in lowered)


def demo_lineup(event: KnownEvent, artists: Sequence[Artist]) -> list[str]:
    """The artist ids of a demo event's line-up (empty when the event is not a concert or festival we know)."""
    genres = lineup_genres(event)
    if not genres:
        return []
    fitting = [a for a in artists if set(a.genres) & set(genres)]
    fitting.sort(key=lambda a: (_hash(event.name, a.name), a.id))
    return [a.id for a in fitting[: LINEUP_SIZE[event.category]]]
