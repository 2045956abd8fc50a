"""Ticket PDF rendering time per holder-name script, in this process (no service, no I/O but font files).

Renders ``--count`` tickets (at most 500) for each script: Latin-1 names use the PDF core fonts; the others
embed subsets of the Unicode fonts (tickets/pdf.py). Prints the median and p95 per PDF and the PDF size.
The first PDF of a script also reads the fonts' character tables (once per process); it is timed apart.

    .venv/bin/python loadtest/ticket_pdf_fonts.py --count 50
"""

from __future__ import annotations

import argparse
import statistics
import time

from boxoffice.tickets.pdf import TicketDocument, find_fonts, render_ticket_pdf

NAMES = {
    "latin-1": "Zoë Müller",
    "cyrillic": "Анна Фёдорова",
    "devanagari": "प्रिया शर्मा",
    "chinese": "王小明",
    "korean": "김민준",
}
DETAILS = {"name": "Benchmark Night", "venue": "Arena", "city": "Berlin", "starts_at": "2026-12-01T19:30:00Z"}
CODE = "eyJ0IjoiMDE5NS1hYmMiLCJlIjoiZXYtMSJ9." + "A" * 86


def main(count: int) -> None:
    fonts = find_fonts()
    print(f"fonts: {[f.name for f in fonts] or 'none installed'}")
    for script, name in NAMES.items():
        doc = TicketDocument("0195-ticket", "order-1", "event", name, CODE, "A-12", "Stalls", DETAILS)
        started = time.perf_counter()
        render_ticket_pdf(doc, fonts)
        first = time.perf_counter() - started
        times, size = [], 0
        for _ in range(count):
            started = time.perf_counter()
            size = len(render_ticket_pdf(doc, fonts))
            times.append(time.perf_counter() - started)
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        print(
            f"{script:11} first {first * 1000:7.1f} ms   median {statistics.median(times) * 1000:6.1f} ms"
            f"   p95 {p95 * 1000:6.1f} ms   {size / 1024:5.1f} KiB"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    main(max(1, min(args.count, 500)))
