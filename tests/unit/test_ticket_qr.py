"""The ticket's QR: a standard QR of the exact code, whatever its length and alphabet, as the gate's scanner
reads it from the PDF itself (the image the PDF carries, not the one the renderer started from)."""

from __future__ import annotations

import io

import pypdf
import pytest
import zxingcpp
from PIL import Image

from boxoffice.tickets.pdf import QR_PIXELS_PER_MODULE, TicketDocument, qr_image, render_ticket_pdf


def qr_in_pdf(pdf: bytes) -> Image.Image:
    (image,) = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].images
    assert image.image is not None
    return image.image


def read_qr(image: Image.Image) -> zxingcpp.Barcode | None:
    grey = image.convert("L")
    bordered = Image.new("L", (grey.width + 32, grey.height + 32), 255)  # a reader needs the quiet zone
    bordered.paste(grey, (16, 16))
    return zxingcpp.read_barcode(bordered, formats=zxingcpp.BarcodeFormat.QRCode)


@pytest.mark.parametrize("code", ["short", "eyJ0IjoiMDE5NS1hYmMiLCJlIjoiZXYtMSJ9." + "A" * 86, "x" * 300])
def test_the_pdfs_qr_reads_back_as_the_code(code: str) -> None:
    doc = TicketDocument("t-1", "o-1", "event", "Ann Lee", code, "A-1", None, {"name": "Concert"})
    pdf = render_ticket_pdf(doc)
    assert b"/FlateDecode" in pdf and b"/CCITTFaxDecode" not in pdf  # stored as it is drawn: see qr_image
    image = qr_in_pdf(pdf)
    found = read_qr(image)
    assert found is not None and found.text == code
    assert found.ec_level == "M"
    assert image.size == qr_image(code).size  # the PDF keeps every pixel


def test_any_text_reads_back_from_the_qr() -> None:
    found = read_qr(qr_image("Łódź-東京-₹"))  # codes are ASCII; the QR itself carries any text
    assert found is not None and found.text == "Łódź-東京-₹"


def test_each_module_is_a_square_of_pixels_with_no_grey() -> None:
    image = qr_image("short")
    assert image.mode == "L"
    assert image.width == image.height and image.width % QR_PIXELS_PER_MODULE == 0
    assert set(image.get_flattened_data()) == {0, 255}
    for y in range(0, image.height, QR_PIXELS_PER_MODULE):  # every pixel of a module has the module's colour
        for x in range(0, image.width, QR_PIXELS_PER_MODULE):
            block = {
                image.getpixel((x + dx, y + dy))
                for dx in range(QR_PIXELS_PER_MODULE)
                for dy in range(QR_PIXELS_PER_MODULE)
            }
            assert len(block) == 1, (x, y)
    assert image.getpixel((0, 0)) == 0  # the finder pattern's dark corner, not the quiet zone
