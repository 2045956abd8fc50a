"""Rendering one ticket as a PDF (fpdf2) with its code as a QR (zxing-cpp).

Pure CPU and no I/O but reading font files: ``PdfRenderer`` runs it in worker processes (or a thread). A
ticket whose text is all Latin-1 uses the PDF core fonts (nothing to embed: the fast, common case). One with
other characters (a holder named in Devanagari, Cyrillic, Chinese, Japanese or Korean) prints its values in
Unicode fonts from Debian packages (``scripts/install-system-deps.sh``, ``deploy/Dockerfile``): Noto Sans
(Latin, Greek, Cyrillic), Noto Sans Devanagari, Droid Sans Fallback (Chinese, Japanese) and Nanum Gothic
(Korean), each added only when the ticket needs it and embedded as a subset of the glyphs used (fpdf2
subsets on output), so a PDF stays ~20 KB. Text is not shaped (fpdf2 shapes only with HarfBuzz, whose text
layer does not extract back to the same characters): Devanagari conjuncts print as their letters with a
visible virama. A character no installed font has, or any when no Unicode font is installed, is
transliterated where Unicode knows how ("Ł" -> "L") and replaced with "?" otherwise. The QR carries the exact
code, whatever the alphabet.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import hashlib
import io
import logging
import multiprocessing
import os
import tempfile
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import fpdf.image_parsing
import zxingcpp
from fontTools.fontBuilder import FontBuilder
from fontTools.ttLib import TTFont
from fpdf import FPDF
from PIL import Image

from boxoffice.platform.localtime import format_local
from boxoffice.platform.observability import configure_worker_logging

QR_SIZE_MM = 62.0
QR_PIXELS_PER_MODULE = 4
QR_DEFLATE_LEVEL = 1
"""zlib's level for the QR's pixels (fpdf2's setting for every image it deflates; ours are the QRs). Long
runs of two values squeeze well at once: a realistic code's 260 x 260 pixels take 0.17 ms at level 1
(6.9 KB) against 0.57 ms at zlib's default (1.6 KB), a fifth of a PDF's CPU (``loadtest/ticket_pdf.py``)."""
fpdf.image_parsing.SETTINGS.compression_level = QR_DEFLATE_LEVEL
CODE_CHARS_PER_LINE = 110  # Courier 5 pt: 1.06 mm per character, 128 mm of line


T = TypeVar("T")


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
    if text.isascii():  # nearly every text (the code, ids, labels): no character to look at
        return text
    return "".join(c if ord(c) < 256 else _transliterate(c) for c in text)


# Unicode fonts: (name, file under a font directory), in the order they are tried for a character.
UNICODE_FONTS: tuple[tuple[str, str], ...] = (
    ("sans", "noto/NotoSans-Regular.ttf"),  # fonts-noto-core: Latin, Greek, Cyrillic (the main value font)
    ("deva", "noto/NotoSansDevanagari-Regular.ttf"),  # fonts-noto-core
    ("cjk", "droid/DroidSansFallbackFull.ttf"),  # fonts-droid-fallback: Chinese, Japanese
    ("hangul", "nanum/NanumGothic.ttf"),  # fonts-nanum: Korean
)
FONT_DIRS: tuple[Path, ...] = (Path("/usr/share/fonts/truetype"), Path("/usr/local/share/fonts"))


@dataclass(frozen=True, slots=True)
class FontFile:
    name: str
    path: str


def find_fonts(dirs: Sequence[Path] = FONT_DIRS) -> tuple[FontFile, ...]:
    """The Unicode fonts installed, in ``UNICODE_FONTS`` order; empty unless the main one (Noto Sans) is."""
    found = []
    for name, relative in UNICODE_FONTS:
        path = next((d / relative for d in dirs if (d / relative).is_file()), None)
        if path is not None:
            found.append(FontFile(name, str(path)))
    return tuple(found) if found and found[0].name == "sans" else ()


class _Source:
    """One installed font, parsed once per process: its character map, and its glyphs read on demand."""

    def __init__(self, path: str) -> None:
        self.font = TTFont(path, lazy=True, recalcTimestamp=False)
        self.cmap: dict[int, str] = dict(self.font.getBestCmap() or {})
        self.coverage = frozenset(self.cmap)


@functools.cache
def _source(path: str) -> _Source:
    return _Source(path)


def _coverage(path: str) -> frozenset[int]:
    return _source(path).coverage


FontPlan = list[tuple[FontFile, frozenset[int]]]
"""The fonts a ticket uses, each with the code points it prints."""


def _plan_fonts(texts: Iterable[str], fonts: Sequence[FontFile]) -> tuple[FontPlan, frozenset[int]]:
    """The fonts a ticket's text needs, each with the code points it prints (the main font first: all it
    has), and the code points they cover together; none when the text is all Latin-1 (core fonts print it)
    or no Unicode font is installed."""
    used = {ord(c) for text in texts for c in text}
    if not any(c >= 256 for c in used) or not fonts:
        return [], frozenset()
    main = fonts[0]
    chosen = [(main, frozenset(used & _coverage(main.path)))]
    missing = used - _coverage(main.path)
    for font in fonts[1:]:
        if not missing:
            break
        if serves := missing & _coverage(font.path):
            chosen.append((font, frozenset(serves | {0x20})))
            missing -= serves
    return chosen, frozenset(used - missing)


# A font reduced to the glyphs one ticket prints: a few KB that fpdf2 reads in a millisecond, where the
# installed font (up to 4 MB for CJK) would take it seconds to parse and subset on every PDF.
_SUBSET_DIR = tempfile.TemporaryDirectory(prefix="boxoffice-fonts-")
_SUBSET_FILES: OrderedDict[tuple[str, frozenset[int]], str] = OrderedDict()
_SUBSET_CACHE_SIZE = 256  # an order's tickets share a holder name, so a batch reuses its fonts
_SUBSET_LOCK = threading.Lock()  # renderer threads share the cache and the lazily parsed fonts


def _subset_file(path: str, chars: frozenset[int]) -> str:
    """A TrueType file with only the glyphs of ``chars`` (and the glyphs they are built from), cached."""
    with _SUBSET_LOCK:
        return _subset_file_locked(path, chars)


def _subset_file_locked(path: str, chars: frozenset[int]) -> str:
    key = (path, chars)
    if (cached := _SUBSET_FILES.get(key)) is not None:
        _SUBSET_FILES.move_to_end(key)
        return cached
    data = _build_subset(_source(path), chars)
    name = hashlib.sha256(path.encode() + b"\0" + ",".join(map(str, sorted(chars))).encode()).hexdigest()[:32]
    target = Path(_SUBSET_DIR.name) / f"{name}.ttf"
    target.write_bytes(data)
    _SUBSET_FILES[key] = str(target)
    while len(_SUBSET_FILES) > _SUBSET_CACHE_SIZE:
        _, evicted = _SUBSET_FILES.popitem(last=False)
        Path(evicted).unlink(missing_ok=True)
    return str(target)


def _build_subset(source: _Source, chars: frozenset[int]) -> bytes:
    font, cmap = source.font, source.cmap
    glyf, hmtx = font["glyf"], font["hmtx"]
    names, seen = [".notdef"], {".notdef"}
    for char in sorted(chars):
        glyph = cmap.get(char)
        if glyph is not None and glyph not in seen:
            seen.add(glyph)
            names.append(glyph)
    index = 0
    while index < len(names):  # composite glyphs (accented letters, some Hangul) need their components
        glyph = glyf[names[index]]
        if glyph.isComposite():
            for component in glyph.getComponentNames(glyf):
                if component not in seen:
                    seen.add(component)
                    names.append(component)
        index += 1
    builder = FontBuilder(font["head"].unitsPerEm, isTTF=True)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({char: cmap[char] for char in chars if char in cmap})
    builder.setupGlyf({name: copy.deepcopy(glyf[name]) for name in names})
    builder.setupHorizontalMetrics({name: hmtx[name] for name in names})
    builder.setupHorizontalHeader(ascent=font["hhea"].ascent, descent=font["hhea"].descent)
    builder.setupNameTable({"familyName": "boxoffice ticket subset", "styleName": "Regular"})
    os2 = font["OS/2"]
    builder.setupOS2(
        sTypoAscender=os2.sTypoAscender,
        sTypoDescender=os2.sTypoDescender,
        sTypoLineGap=os2.sTypoLineGap,
        usWinAscent=os2.usWinAscent,
        usWinDescent=os2.usWinDescent,
        sxHeight=getattr(os2, "sxHeight", 0),
        sCapHeight=getattr(os2, "sCapHeight", 0),
        fsType=os2.fsType,  # the font's own embedding permission, unchanged
    )
    builder.setupPost()
    buffer = io.BytesIO()
    builder.save(buffer)
    return buffer.getvalue()


def _printable(text: str, covered: frozenset[int]) -> str:
    """``text`` with what no chosen font can print transliterated or replaced by "?"."""
    return "".join(c if ord(c) in covered or ord(c) < 256 else _transliterate(c) for c in text)


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


def qr_image(code: str) -> Image.Image:
    """The code as a QR (error correction M): black and white pixels, one 4-pixel square per module, no quiet
    zone (the page's margin is one; the PDF scales the image without blurring). zxing-cpp encodes it in C++
    (a ticket's code of about 260 characters in ~0.7 ms, and the time grows with the code's length; segno,
    pure Python, took ~4 ms for a shorter code with a fixed mask). Nearly all of it is choosing the mask: a
    fixed one (``data_mask=``) takes 75 µs, but some codes then read worse when blurred (README, "Thirteenth
    session"), and a ticket must scan at the gate.

    The PDF stores it deflated (``FlateDecode``, ``QR_DEFLATE_LEVEL``) as it is. A PNG handed to fpdf2 was
    decoded and re-encoded as CCITT G4 through a TIFF: 0.45 ms more per ticket. It is 8-bit grey, not 1-bit:
    fpdf2 (2.8.9) gives a 1-bit image deflated CCITT's decode parameters instead of its PNG predictor's, and a
    viewer would shift every row by a byte (``tests/unit/test_ticket_qr.py`` reads the QR back from the PDF)."""
    symbol = zxingcpp.create_barcode(code, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    pixels = symbol.to_image(scale=QR_PIXELS_PER_MODULE, add_quiet_zones=False)  # 0: dark, 255: light
    height, width = pixels.shape
    return Image.frombytes("L", (width, height), bytes(pixels))  # type: ignore[call-overload]  # a buffer; the stub omits it


def render_ticket_pdf(doc: TicketDocument, fonts: Sequence[FontFile] = ()) -> bytes:
    lines = [*describe(doc), *holder_lines(doc)]
    needed, covered = _plan_fonts((value for _, value in lines), fonts)
    pdf = FPDF(format=(148, 210), orientation="portrait", unit="mm")  # A5
    pdf.set_title(latin1(f"boxoffice ticket {doc.ticket_id}"))
    pdf.set_creator("boxoffice")
    pdf.set_auto_page_break(auto=False)
    pdf.set_image_filter("FlateDecode")  # see qr_image
    if needed:
        for font, chars in needed:
            pdf.add_font(font.name, "", _subset_file(font.path, chars))
        # Characters the main font lacks come from the others.
        pdf.set_fallback_fonts([font.name for font, _ in needed[1:]], exact_match=False)
        value_font = needed[0][0].name
    else:
        value_font = "Helvetica"

    def show(text: str) -> str:
        return _printable(text, covered) if needed else latin1(text)

    pdf.add_page()
    left, width = pdf.l_margin, pdf.w - 2 * pdf.l_margin
    y = pdf.t_margin

    def put(x: float, height: float, text: str) -> float:
        """``text`` where ``cell(w, height, text)`` at (x, y) prints it (left-aligned, vertically centred), and
        the y of the next line. Through ``FPDF.text``: a third of a cell's cost (no layout of styled
        fragments), and a ticket has some twenty lines. Only for text the current font prints whole (no
        fallback fonts); the others go through ``cell``."""
        pdf.text(x + pdf.c_margin, y + 0.5 * height + 0.3 * pdf.font_size, text)
        return y + height

    pdf.set_font("Helvetica", style="B", size=18)
    y = put(left, 10, "boxoffice")
    pdf.set_font("Helvetica", size=9)
    y = put(left, 5, "Train ticket" if doc.kind == "train" else "Event ticket") + 3
    for label, value in lines:
        pdf.set_font("Helvetica", style="B", size=10)
        put(left, 7, latin1(label))
        pdf.set_font(value_font, size=10)
        text = show(value)
        if pdf.get_string_width(text) > width - 40:  # multi_cell's line breaking is slow; most values fit
            pdf.set_xy(left + 38, y)
            pdf.multi_cell(width - 38, 7, text, new_x="LMARGIN", new_y="NEXT")
            y = pdf.get_y()
        elif needed:  # the fallback fonts apply in cells only
            pdf.set_xy(left + 38, y)
            pdf.cell(width - 38, 7, text)
            y += 7
        else:
            y = put(left + 38, 7, text)
    top = y + 4
    pdf.image(qr_image(doc.code), x=(pdf.w - QR_SIZE_MM) / 2, y=top, w=QR_SIZE_MM, h=QR_SIZE_MM)
    y = top + QR_SIZE_MM + 3
    pdf.set_font("Courier", size=5)
    for start in range(0, len(doc.code), CODE_CHARS_PER_LINE):  # ASCII (base64url) in a fixed-width font
        y = put(left, 2.2, doc.code[start : start + CODE_CHARS_PER_LINE])
    pdf.set_font("Helvetica", size=7)
    y += 1
    put(left, 3.5, latin1(instructions(doc)))
    return bytes(pdf.output())


def render_many(docs: list[TicketDocument], fonts: Sequence[FontFile] = ()) -> list[bytes | None]:
    """Render each document; None for one that cannot be rendered, so it does not hold up the others.

    Runs in a worker process (the tickets service's PDF pool): rendering is pure Python and would otherwise
    hold the interpreter lock that the service's requests need.
    """
    logging.getLogger("fontTools").setLevel(logging.ERROR)  # its subsetter notes every table it drops
    rendered: list[bytes | None] = []
    for doc in docs:
        try:
            rendered.append(render_ticket_pdf(doc, fonts))
        except Exception:
            logging.getLogger("boxoffice.tickets.pdf").exception("ticket PDF could not be rendered: %s", doc.ticket_id)
            rendered.append(None)
    return rendered


WARM_UP = TicketDocument(
    ticket_id="warm-up",
    order_id="warm-up",
    kind="event",
    holder="Warm Up",
    code="warm-up",
    label="A-1",
    section=None,
    details={"name": "Warm up"},
)


def warm_up() -> None:
    """Run in each new worker process: one throw-away PDF, so that what fpdf2 sets up on first use (and the
    import of this module, which unpickling this function did) is done before a buyer's ticket waits."""
    render_ticket_pdf(WARM_UP)


def start_worker(log_level: str, log_json: bool, nice: int) -> None:
    """Run first in each worker process: lower its priority by ``nice`` (the service's requests come first
    when the cores are busy), and log JSON lines like the service."""
    if nice:
        os.nice(nice)
    configure_worker_logging(log_level, log_json)


async def settled(work: Future[T]) -> T:
    """The outcome of work submitted to a process pool, awaited so that cancelling the caller leaves the work
    item alone (``asyncio.shield``; ``run_in_executor`` would cancel it).

    Python 3.11's pool sets BrokenProcessPool on every item it still holds once a worker dies, as ``close``
    makes them do, and an item cancelled from outside raises InvalidStateError in its manager thread there
    (CPython gh-107219, fixed in 3.12): seen when a service stopped, its tasks cancelled mid-rendering. The pool
    cancels what it still holds itself, on ``shutdown(cancel_futures=True)``, and in step with that loop."""
    return await asyncio.shield(asyncio.wrap_future(work))


class PdfRenderer:
    """Renders PDFs in worker processes (``processes``; 0: in a thread of this one): rendering is pure
    Python and would otherwise hold the interpreter lock that the service's requests need."""

    def __init__(
        self,
        processes: int,
        *,
        log_level: str = "INFO",
        log_json: bool = True,
        fonts: Sequence[FontFile] | None = None,
        nice: int = 0,
    ) -> None:
        self.processes = processes
        self.nice = nice
        self.fonts = tuple(find_fonts() if fonts is None else fonts)
        if not self.fonts:
            logging.getLogger("boxoffice.tickets.pdf").warning(
                "no Unicode font installed (fonts-noto-core): names outside Latin-1 print as '?'"
            )
        self.log_level, self.log_json = log_level, log_json
        self._pool: ProcessPoolExecutor | None = None

    async def __call__(self, docs: list[TicketDocument]) -> list[bytes | None]:
        if self.processes <= 0:
            return await asyncio.to_thread(render_many, docs, self.fonts)
        try:
            return await settled(self._executor().submit(render_many, docs, self.fonts))
        except BrokenProcessPool:
            # A worker died (killed, out of memory): this pool takes no more work, ever. A new pool renders
            # the batch; without it the service would issue no PDF again until restarted.
            self.close()
            return await settled(self._executor().submit(render_many, docs, self.fonts))

    async def one(self, doc: TicketDocument) -> bytes | None:
        """One PDF that a buyer is waiting for: in the worker processes where this process runs them (the
        renderer loop started them), else in a thread (~20 ms; a process that only serves requests keeps no
        worker processes, and starting one would keep the buyer waiting for seconds)."""
        if self._pool is None:
            (pdf,) = await asyncio.to_thread(render_many, [doc], self.fonts)
        else:
            (pdf,) = await self([doc])
        return pdf

    async def offload(self, fn: Callable[..., T], *args: Any) -> T:
        """Other CPU-heavy work of the tickets worker (composing a confirmation e-mail with its PDFs: ~5 ms)
        in the same low-priority worker processes, off the event loop that serves the sale; in a thread where
        this process keeps no worker processes. ``fn`` and its arguments must pickle."""
        pool = self._pool
        if pool is not None:
            try:
                return await settled(pool.submit(fn, *args))
            except BrokenProcessPool:
                self.close()  # the next rendering starts a new pool
        return await asyncio.to_thread(fn, *args)

    def start(self) -> None:
        """Start the worker processes now, without waiting for them. A spawned worker imports the service's
        code before it renders anything (the main module too: ``boxoffice.cli`` and every service), which
        takes 3 s on an idle 2-core machine and over 10 s on a busy one; started lazily, that was the first
        order's wait for its PDFs. Each worker also renders one throw-away PDF (``warm_up``)."""
        if self.processes <= 0:
            return
        pool = self._executor()
        for _ in range(self.processes):  # each submit starts a worker while none is idle
            pool.submit(warm_up)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: this process runs threads (database drivers) that a fork would copy mid-lock.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=context,
                initializer=start_worker,
                initargs=(self.log_level, self.log_json, self.nice),
            )
        return self._pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        workers = list(pool._processes.values())  # Python 3.11 has no terminate_workers()
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            # A worker still starting (importing for seconds) could outlive this process otherwise; what it
            # was rendering is rendered again by the next renderer (PDFs are recorded only once stored).
            worker.terminate()
