"""The ticket's QR image: a standard QR of the exact code, whatever its length and alphabet."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image

from boxoffice.tickets.pdf import png_of_modules, qr_png


def pixels(png: bytes) -> tuple[tuple[int, int], list[int]]:
    image = Image.open(io.BytesIO(png)).convert("L")
    return image.size, [image.getpixel((x, y)) for y in range(image.height) for x in range(image.width)]


@pytest.mark.parametrize(
    "code", ["short", "eyJ0IjoiMDE5NS1hYmMiLCJlIjoiZXYtMSJ9." + "A" * 86, "x" * 300, "Łódź-東京-₹"]
)
def test_the_qr_png_reads_back_as_the_code(code: str) -> None:
    png = qr_png(code)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png)).convert("L")
    bordered = Image.new("L", (image.width + 32, image.height + 32), 255)  # a reader needs the quiet zone
    bordered.paste(image, (16, 16))
    found = zxingcpp.read_barcode(bordered, formats=zxingcpp.BarcodeFormat.QRCode)
    assert found is not None and found.text == code
    assert found.ec_level == "M"
    assert image.width % 4 == 0 and image.width == image.height  # 4 pixels per module, square


def test_rows_whose_width_is_not_a_whole_byte_are_padded() -> None:
    matrix = [bytearray([1, 0, 1]), bytearray([0, 1, 0]), bytearray([1, 1, 0])]
    size, values = pixels(png_of_modules(matrix, scale=1))
    assert size == (3, 3)
    assert values == [0, 255, 0, 255, 0, 255, 0, 0, 255]
