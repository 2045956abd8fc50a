"""The demo events' page details: a description, a picture, the doors time and the venue's address.

Kept apart from the list of demo events (``demo``) so either can change alone: details are derived from an
event's name, category, venue and city, with real addresses for the demo's venues (and "venue, city" for any
other). Pictures are the SVGs ``scripts/make_event_images.py`` draws into web's ``static/events/``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from boxoffice.catalog.domain import Category, EventDetails

IMAGES_PER_CATEGORY = 4

ADDRESSES = {
    ("Ziggo Dome", "Amsterdam"): "De Passage 100, 1101 AX Amsterdam, Netherlands",
    ("Paradiso", "Amsterdam"): "Weteringschans 6-8, 1017 SG Amsterdam, Netherlands",
    ("Philharmonie", "Berlin"): "Herbert-von-Karajan-Straße 1, 10785 Berlin, Germany",
    ("Columbiahalle", "Berlin"): "Columbiadamm 13-21, 10965 Berlin, Germany",
    ("Jawaharlal Nehru Stadium", "New Delhi"): "Bhishma Pitamah Marg, Pragati Vihar, New Delhi 110003, India",
    ("Blue Note", "Milan"): "Via Pietro Borsieri 37, 20159 Milano, Italy",
    ("Royal Lyceum", "Edinburgh"): "30b Grindlay Street, Edinburgh EH3 9AX, United Kingdom",
    ("Theatre du Chatelet", "Paris"): "1 Place du Châtelet, 75001 Paris, France",
    ("Stadsschouwburg", "Amsterdam"): "Leidseplein 26, 1017 PT Amsterdam, Netherlands",
    ("NCPA", "Mumbai"): "NCPA Marg, Nariman Point, Mumbai 400021, India",
    ("Boom Chicago", "Amsterdam"): "Rozengracht 117, 1016 LV Amsterdam, Netherlands",
    ("Quatsch Comedy Club", "Berlin"): "Friedrichstraße 107, 10117 Berlin, Germany",
    ("Canvas Laugh Club", "Mumbai"): "Palladium Mall, Lower Parel, Mumbai 400013, India",
    ("Le Point Virgule", "Paris"): "7 Rue Sainte-Croix de la Bretonnerie, 75004 Paris, France",
    ("Johan Cruijff ArenA", "Amsterdam"): "Johan Cruijff Boulevard 1, 1101 AX Amsterdam, Netherlands",
    ("Wankhede Stadium", "Mumbai"): "D Road, Churchgate, Mumbai 400020, India",
    ("Strasse des 17. Juni", "Berlin"): "Straße des 17. Juni, 10557 Berlin, Germany",
    ("Palau Sant Jordi", "Barcelona"): "Passeig Olímpic 5-7, 08038 Barcelona, Spain",
    ("Walibi Holland", "Biddinghuizen"): "Spijkweg 30, 8256 RJ Biddinghuizen, Netherlands",
    ("Vagator Beach", "Goa"): "Vagator, Bardez, North Goa 403509, India",
    ("Parc del Forum", "Barcelona"): "Rambla del Prim 2-4, 08019 Barcelona, Spain",
    ("Flagey", "Brussels"): "Place Sainte-Croix, 1050 Ixelles, Brussels, Belgium",
}

# How long before the start the doors open, by category.
DOORS_BEFORE: dict[Category, timedelta] = {
    "concert": timedelta(hours=1),
    "theatre": timedelta(minutes=45),
    "comedy": timedelta(minutes=30),
    "sports": timedelta(minutes=90),
    "festival": timedelta(hours=2),
}

DESCRIPTIONS: dict[Category, str] = {
    "concert": "{name} comes to {venue} in {city} for one night only: the full live show, with a support act "
    "opening the evening. Standing and seated tickets are sold in the sections below; doors open an hour "
    "before the show.",
    "theatre": "{name} at {venue}, {city}: a new staging with a full cast and live music. The performance runs "
    "about two and a half hours with one interval. Latecomers are admitted at a suitable break.",
    "comedy": "{name}: an evening of stand-up at {venue} in {city}, with a host and four comedians, new material "
    "and a few regulars. Ages 16 and up; the show is in English.",
    "sports": "{name} at {venue}, {city}. Arrive early: gates open ninety minutes before the start and bags are "
    "checked at the entrance. Every ticket is for one seat in the stand shown.",
    "festival": "{name}: stages, food and late nights at {venue} near {city}. A day pass covers every stage from "
    "the opening of the gates; VIP adds a covered viewing area and its own bars.",
}


def demo_details(index: int, name: str, category: Category, venue: str, city: str, starts_at: datetime
                 ) -> EventDetails:
    """The details of the ``index``-th demo event (the index picks one of its category's pictures)."""
    return EventDetails(
        description=DESCRIPTIONS[category].format(name=name, venue=venue, city=city),
        image_url=f"/static/events/{category}-{index % IMAGES_PER_CATEGORY + 1}.svg",
        doors_at=starts_at - DOORS_BEFORE[category],
        venue_address=ADDRESSES.get((venue, city), f"{venue}, {city}"),
    )
