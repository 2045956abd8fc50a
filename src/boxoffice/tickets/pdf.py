"""Rendering one ticket as a PDF (fpdf2) with its code as a QR (segno).

Pure CPU and no I/O: ``PdfRenderer`` runs it in worker processes (or a thread). The text uses the PDF core
font Helvetica (no font file to ship or embed); characters outside Latin-1 are transliterated where Unicode knows how
("Ł" -> "L") and replaced with "?" otherwise. The QR carries the exact code, whatever the alphabet.
"""

from __future__ import annotations

import asyncio
import io
import logging
import multiprocessing
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import segno
from fpdf import FPDF

from boxoffice.platform.localtime import format_local
from boxoffice.platform.observability import configure_worker_logging

QR_SIZE_MM = 62.0
QR_MASK = 2
CODE_CHARS_PER_LINE = 110  # Courier 5 pt: 1.06 mm per character, 128 mm of line


@dataclass(frozen=True, slots=True)
class TicketDocument:
    ticket_id: str
    order_id: str
    kind: str  # event | train
    holder: str
    code: str
    label: str
    section: str | None
    details: dict[str, Any]
    """The ``event`` or ``train`` object of the ticket-bookings record."""
    order_number: str = ""
    """The readable order number (empty for orders from before numbers)."""


def latin1(text: str) -> str:
    return "".join(c if ord(c) < 256 else _transliterate(c) for c in text)


def _transliterate(char: str) -> str:
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return base if base and all(ord(c) < 256 for c in base) else _EXTRA.get(char, "?")


_EXTRA = {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ŀ": "L", "ŀ": "l", "Œ": "OE", "œ": "oe", "\u0131": "i"}


def _where(name: Any, code: Any) -> str:
    """A station as a person reads it: "Mumbai Central (BCT)"; the code alone when the name is unknown."""
    if name and code and name != code:
        return f"{name} ({code})"
    return str(name or code or "?")


def describe(doc: TicketDocument) -> list[tuple[str, str]]:
    """The lines a ticket prints, as (label, value); times in the local time of the place, with its zone."""
    d = doc.details
    if doc.kind == "train":
        title = " ".join(str(p) for p in (d.get("train_number"), d.get("name")) if p) or "Train"
        class_name = d.get("class_name")
        code = d.get("class_code")
        travel_class = f"{class_name} ({code})" if class_name and code and class_name != code else str(code or "-")
        return [
            ("Train", title),
            ("From", _where(d.get("origin_name"), d.get("origin"))),
            ("Departs", format_local(d.get("departs_at"), d.get("origin_timezone"))),
            ("To", _where(d.get("destination_name"), d.get("destination"))),
            ("Arrives", format_local(d.get("arrives_at"), d.get("destination_timezone"))),
            ("Class", travel_class),
            ("Coach / seat", doc.label),
        ]
    venue = ", ".join(str(p) for p in (d.get("venue"), d.get("city")) if p) or "-"
    place = doc.label if doc.section in (None, doc.label) else f"{doc.section}, seat {doc.label}"
    lines = [
        ("Event", str(d.get("name") or "Event")),
        ("Date and time", format_local(d.get("starts_at"), d.get("timezone"))),
        ("Venue", venue),
    ]
    if d.get("address"):
        lines.append(("Address", str(d["address"])))
    return [*lines, ("Section / row / seat", place)]


def holder_lines(doc: TicketDocument) -> list[tuple[str, str]]:
    """Whose ticket it is and which order: a train ticket names its passenger."""
    return [
        ("Passenger" if doc.kind == "train" else "Holder", doc.holder),
        ("Order number", doc.order_number or doc.order_id),
        ("Ticket", doc.ticket_id),
    ]


def instructions(doc: TicketDocument) -> str:
    """What the holder shows at the gate or on the train."""
    if doc.kind == "train":
        return "Show this ticket with a photo ID matching the passenger name. Valid once; do not share it."
    return "Show this QR code at the entrance. It is valid once; do not share it."


def qr_png(code: str) -> bytes:
    """The code as a QR image, one 4-pixel square per module (the PDF scales it without blurring).

    The mask is fixed rather than searched: the search is ~20 ms of pure Python per ticket (most of the
    rendering time), and it only matters for data with long uniform runs, which a base64url code never has.
    Any of the eight masks gives a standard QR that every reader decodes.
    """
    qr = segno.make(code, error="m", micro=False, mask=QR_MASK)
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=4, border=0)
    return buffer.getvalue()


def render_ticket_pdf(doc: TicketDocument) -> bytes:
    pdf = FPDF(format=(148, 210), orientation="portrait", unit="mm")  # A5
    pdf.set_title(latin1(f"boxoffice ticket {doc.ticket_id}"))
    pdf.set_creator("boxoffice")
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    width = pdf.w - 2 * pdf.l_margin
    pdf.set_font("Helvetica", style="B", size=18)
    pdf.cell(width, 10, "boxoffice", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    pdf.cell(width, 5, "Train ticket" if doc.kind == "train" else "Event ticket", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for label, value in [*describe(doc), *holder_lines(doc)]:
        pdf.set_font("Helvetica", style="B", size=10)
        pdf.cell(38, 7, latin1(label))
        pdf.set_font("Helvetica", size=10)
        text = latin1(value)
        if pdf.get_string_width(text) <= width - 40:  # multi_cell's line breaking is slow; most values fit
            pdf.cell(width - 38, 7, text, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.multi_cell(width - 38, 7, text, new_x="LMARGIN", new_y="NEXT")
    top = pdf.get_y() + 4
    pdf.image(io.BytesIO(qr_png(doc.code)), x=(pdf.w - QR_SIZE_MM) / 2, y=top, w=QR_SIZE_MM, h=QR_SIZE_MM)
    pdf.set_y(top + QR_SIZE_MM + 3)
    pdf.set_font("Courier", size=5)
    for start in range(0, len(doc.code), CODE_CHARS_PER_LINE):  # ASCII (base64url) in a fixed-width font
        pdf.cell(width, 2.2, doc.code[start : start + CODE_CHARS_PER_LINE], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=7)
    pdf.ln(1)
    pdf.cell(width, 3.5, latin1(instructions(doc)))
    return bytes(pdf.output())


def render_many(docs: list[TicketDocument]) -> list[bytes | None]:
    """Render each document; None for one that cannot be rendered, so it does not hold up the others.

    Runs in a worker process (the tickets service's PDF pool): rendering is pure Python and would otherwise
    hold the interpreter lock that the service's requests need.
    """
    rendered: list[bytes | None] = []
    for doc in docs:
        try:
            rendered.append(render_ticket_pdf(doc))
        except Exception:
            logging.getLogger("boxoffice.tickets.pdf").exception("ticket PDF could not be rendered: %s", doc.ticket_id)
            rendered.append(None)
    return rendered


class PdfRenderer:
    """Renders PDFs in worker processes (``processes``; 0: in a thread of this one): rendering is pure
    Python and would otherwise hold the interpreter lock that the service's requests need."""

    def __init__(self, processes: int, *, log_level: str = "INFO", log_json: bool = True) -> None:
        self.processes = processes
        self.log_level, self.log_json = log_level, log_json
        self._pool: ProcessPoolExecutor | None = None

    async def __call__(self, docs: list[TicketDocument]) -> list[bytes | None]:
        if self.processes <= 0:
            return await asyncio.to_thread(render_many, docs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor(), render_many, docs)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): this pool takes no more work, ever. A new pool renders
            # the batch; without it the service would issue no PDF again until restarted.
            self.close()
            return await asyncio.get_running_loop().run_in_executor(self._executor(), render_many, docs)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: this process runs threads (database drivers) that a fork would copy mid-lock.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=context,
                initializer=configure_worker_logging,  # the workers' log lines are JSON like the service's
                initargs=(self.log_level, self.log_json),
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
