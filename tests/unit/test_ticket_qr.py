"""The ticket's QR image: our PNG writer draws exactly what segno's own writer draws (only faster)."""

from __future__ import annotations

import io

import pytest
import segno
from PIL import Image

from boxoffice.tickets.pdf import QR_MASK, png_of_modules, qr_png


def pixels(png: bytes) -> tuple[tuple[int, int], list[int]]:
    image = Image.open(io.BytesIO(png)).convert("L")
    return image.size, [image.getpixel((x, y)) for y in range(image.height) for x in range(image.width)]


@pytest.mark.parametrize("code", ["short", "eyJ0IjoiMDE5NS1hYmMiLCJlIjoiZXYtMSJ9." + "A" * 86, "x" * 300])
def test_the_qr_png_has_segnos_pixels(code: str) -> None:
    qr = segno.make(code, error="m", micro=False, mask=QR_MASK)
    theirs = io.BytesIO()
    qr.save(theirs, kind="png", scale=4, border=0)
    ours = qr_png(code)
    assert ours.startswith(b"\x89PNG\r\n\x1a\n")
    assert pixels(ours) == pixels(theirs.getvalue())


def test_rows_whose_width_is_not_a_whole_byte_are_padded() -> None:
    matrix = [bytearray([1, 0, 1]), bytearray([0, 1, 0]), bytearray([1, 1, 0])]
    size, values = pixels(png_of_modules(matrix, scale=1))
    assert size == (3, 3)
    assert values == [0, 255, 0, 255, 0, 255, 0, 0, 255]
