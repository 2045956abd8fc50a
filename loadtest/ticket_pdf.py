"""CPU per ticket PDF as the renderer's worker makes it: a Latin-1 holder and a real signed code (about 260
characters, the length the tickets service issues), in this process.

    .venv/bin/python loadtest/ticket_pdf.py --pdfs 300 --rounds 5
    .venv/bin/python loadtest/ticket_pdf.py --profile 15     # cProfile's top 15 of one round

Prints the median CPU milliseconds per PDF over the rounds, each round's figure and the PDF's size. Compare
two versions of the code by running it under each (``PYTHONPATH=<other tree>/src``), alternated.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from boxoffice.tickets.codes import TicketClaims, sign_code
from boxoffice.tickets.pdf import TicketDocument, render_ticket_pdf

DETAILS = {"name": "Benchmark Night", "venue": "Arena", "city": "Berlin", "starts_at": "2026-12-01T19:30:00Z"}


def document() -> TicketDocument:
    ticket_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    claims = TicketClaims(ticket_id, event_id, "GA-1734", "Jane Buyer", 1, "k-2026-11")
    code = sign_code(claims, Ed25519PrivateKey.generate())
    return TicketDocument(ticket_id, str(uuid.uuid4()), "event", "Jane Buyer", code, "GA-1734", "Floor", DETAILS)


def main(pdfs: int, rounds: int, profile: int) -> None:
    doc = document()
    size = len(render_ticket_pdf(doc))
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [render_ticket_pdf(doc) for _ in range(pdfs)])
        pstats.Stats(profiler).sort_stats("tottime").print_stats(profile)
        return
    figures = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(pdfs):
            render_ticket_pdf(doc)
        figures.append((time.process_time() - started) * 1000 / pdfs)
    print(f"code {len(doc.code)} characters, PDF {size} bytes")
    print(f"CPU per PDF: median {statistics.median(figures):.3f} ms (rounds: {', '.join(f'{f:.3f}' for f in figures)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=int, default=300, help="PDFs per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, help="print cProfile's top N of one round instead")
    args = parser.parse_args()
    main(max(1, args.pdfs), max(1, args.rounds), args.profile)
