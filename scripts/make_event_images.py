#!/usr/bin/env python3
"""Draws the demo events' pictures: small SVGs, one set per category, into web's static/events/.

    .venv/bin/python scripts/make_event_images.py

Deterministic (a fixed seed per picture), so running it again changes nothing; the output is committed
(about 2 KB a picture). Catalog's demo data points at them (``catalog/demo_details.py``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "boxoffice" / "web" / "static" / "events"
PER_CATEGORY = 4
W, H = 1200, 600

# (top, bottom, accent) colours per picture of a category
PALETTES = {
    "concert": [("#2a0845", "#6441a5", "#ff4fd8"), ("#0f0c29", "#302b63", "#38e1ff"),
                ("#3a0d0d", "#8e2de2", "#ffd84f"), ("#001f3f", "#5b3df5", "#7dffb3")],
    "theatre": [("#1b0505", "#5c0a12", "#f6c453"), ("#120914", "#4a0d2b", "#ffd9a0"),
                ("#0d0d1a", "#6b0f1a", "#f3d27a"), ("#1a0a00", "#7a1f0f", "#ffe7b3")],
    "comedy": [("#0b1d3a", "#1e3c72", "#ffcc33"), ("#1a1a2e", "#3d2c8d", "#ff7b54"),
               ("#10202b", "#275d6b", "#ffe066"), ("#231942", "#5e548e", "#ffb4a2")],
    "sports": [("#0b3d20", "#1f7a3a", "#ffffff"), ("#0a2e36", "#11694b", "#f4f4f4"),
               ("#14361b", "#2d8a3e", "#fffbe6"), ("#06283d", "#1b6b4a", "#e8fff0")],
    "festival": [("#ff7e5f", "#feb47b", "#2d1b4e"), ("#f857a6", "#ff5858", "#2b0f3a"),
                 ("#fc4a1a", "#f7b733", "#3b1d0f"), ("#ee0979", "#ff6a00", "#1f1035")],
}


def _background(top: str, bottom: str) -> str:
    return (f'<defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="{top}"/>'
            f'<stop offset="1" stop-color="{bottom}"/></linearGradient></defs>'
            f'<rect width="{W}" height="{H}" fill="url(#g)"/>')


def concert(rng: random.Random, accent: str) -> str:
    beams = "".join(
        f'<polygon points="{x},0 {x - 160 + rng.randint(0, 60)},{H} {x + 100 + rng.randint(0, 60)},{H}" '
        f'fill="{accent}" opacity="{rng.uniform(.08, .2):.2f}"/>' for x in range(120, W, 240))
    crowd = "".join(f'<circle cx="{x}" cy="{H - 70 - rng.randint(0, 25)}" r="{rng.randint(18, 26)}"/>'
                    for x in range(10, W, 42))
    return f'{beams}<g fill="#0a0612">{crowd}<rect y="{H - 70}" width="{W}" height="70"/></g>'


def theatre(rng: random.Random, accent: str) -> str:
    folds = "".join(f'<path d="M{x} 0 q 30 {H // 2} 0 {H} h 40 q -30 -{H // 2} 0 -{H} z"/>' for x in range(0, 330, 55))
    curtain = f'<rect width="330" height="{H}" fill="#7d0f1c"/><g fill="#000" opacity=".18">{folds}</g>'
    rx = 260 + rng.randint(0, 60)
    glow = f'<ellipse cx="{W // 2}" cy="{H - 60}" rx="{rx}" ry="60" fill="{accent}" opacity=".55"/>'
    return (f'{glow}'
            f'<polygon points="{W // 2 - 40},0 {W // 2 + 40},0 {W // 2 + 260},{H - 60} {W // 2 - 260},{H - 60}" '
            f'fill="{accent}" opacity=".12"/>{curtain}<g transform="translate({W - 330} 0)">{curtain}</g>'
            f'<rect width="{W}" height="48" fill="#5a0a14"/>'
            f'<rect y="{H - 20}" width="{W}" height="20" fill="#2a1208"/>')


def comedy(rng: random.Random, accent: str) -> str:
    bricks = ('<defs><pattern id="b" width="90" height="80" patternUnits="userSpaceOnUse"><g fill="#000" opacity=".16">'
              '<rect x="2" y="2" width="86" height="36" rx="3"/><rect x="-43" y="42" width="86" height="36" rx="3"/>'
              f'<rect x="47" y="42" width="86" height="36" rx="3"/></g></pattern></defs><rect width="{W}" height="{H}" '
              'fill="url(#b)"/>')
    cx = W // 2 + rng.randint(-200, 200)
    return (f'{bricks}<circle cx="{cx}" cy="{H // 2}" r="210" fill="{accent}" opacity=".35"/>'
            f'<g fill="#101018"><rect x="{cx - 6}" y="{H // 2 - 40}" width="12" height="300"/>'
            f'<rect x="{cx - 22}" y="{H // 2 - 120}" width="44" height="90" rx="22"/>'
            f'<rect x="{cx - 80}" y="{H - 24}" width="160" height="14" rx="7"/></g>')


def sports(rng: random.Random, accent: str) -> str:
    stripes = "".join(f'<rect x="{x}" width="75" height="{H}" fill="#fff" opacity=".05"/>' for x in range(0, W, 150))
    lights = "".join(f'<circle cx="{x}" cy="40" r="{rng.randint(10, 16)}" fill="{accent}" opacity=".9"/>'
                     for x in range(80, W, 260))
    return (f'{stripes}<g fill="none" stroke="{accent}" stroke-width="6" opacity=".8">'
            f'<rect x="60" y="90" width="{W - 120}" height="{H - 150}"/>'
            f'<line x1="{W // 2}" y1="90" x2="{W // 2}" y2="{H - 60}"/>'
            f'<circle cx="{W // 2}" cy="{(H + 30) // 2}" r="90"/>'
            f'<rect x="60" y="{H // 2 - 90}" width="150" height="210"/>'
            f'<rect x="{W - 210}" y="{H // 2 - 90}" width="150" height="210"/></g>{lights}')


def festival(rng: random.Random, accent: str) -> str:
    sun = f'<circle cx="{rng.randint(300, 900)}" cy="{H - 210}" r="120" fill="#fff4c2" opacity=".85"/>'
    tents = "".join(f'<polygon points="{x},{H - 40} {x + 90},{H - 40 - rng.randint(110, 170)} {x + 180},{H - 40}"/>'
                    for x in range(-40, W, 170))
    flags = "".join(f'<polygon points="{x},60 {x + 40},60 {x + 20},100" fill="{c}"/>'
                    for x, c in zip(range(0, W, 50), ["#fff", accent, "#ffd84f", "#48e5c2"] * 8, strict=False))
    return (f'{sun}<path d="M0 60 Q {W // 2} 100 {W} 60" stroke="#fff" stroke-width="3" fill="none"/>{flags}'
            f'<g fill="{accent}">{tents}<rect y="{H - 44}" width="{W}" height="44"/></g>')


DRAW: dict[str, Callable[[random.Random, str], str]] = {
    "concert": concert, "theatre": theatre, "comedy": comedy, "sports": sports, "festival": festival,
}


def picture(category: str, n: int) -> str:
    top, bottom, accent = PALETTES[category][n - 1]
    rng = random.Random(f"{category}-{n}")  # noqa: S311 - a fixed seed per picture, for art, not secrets
    body = _background(top, bottom) + DRAW[category](rng, accent)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
            f'aria-label="{category}">{body}</svg>\n')


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for category in DRAW:
        for n in range(1, PER_CATEGORY + 1):
            (OUT / f"{category}-{n}.svg").write_text(picture(category, n))
    total = sum(p.stat().st_size for p in OUT.glob("*.svg"))
    print(f"{len(DRAW) * PER_CATEGORY} pictures, {total} bytes, in {OUT}")


if __name__ == "__main__":
    main()
