"""CPU per composed e-mail: ``platform.mail.compose`` (email.mime, ASCII addresses) against the
``EmailMessage`` path it keeps for non-ASCII addresses, alternated in one process.

    .venv/bin/python loadtest/mail_compose.py --messages 2000 --rounds 3

The message is an order confirmation as the tickets worker composes it: a short text and one ticket PDF
(rendered by ``tickets.pdf``, about 3 KB). The figure is CPU time per message.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boxoffice.platform.mail import Attachment, _compose_unicode, compose  # noqa: E402
from boxoffice.tickets.pdf import TicketDocument, render_ticket_pdf  # noqa: E402


def per_message(build: Callable[[], bytes], messages: int) -> float:
    build()
    started = time.process_time()
    for _ in range(messages):
        build()
    return (time.process_time() - started) * 1e6 / messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    doc = TicketDocument("0192f0b2-0000-7000-8000-000000000000", "o-1", "event", "Jane Buyer", "c" * 124,
                         "GA-17", "Floor", {"name": "Big Concert", "venue": "Arena"})
    files = (Attachment("ticket-1.pdf", render_ticket_pdf(doc)),)
    letter = ("boxoffice <no-reply@boxoffice.localhost>", "buyer-17@example.com", "Your tickets for Big Concert",
              "Hello Jane,\n\nyour order is confirmed; your ticket is attached.\n" * 4, files, "o-1.confirmation")
    ways: dict[str, list[float]] = {"compose (email.mime)": [], "EmailMessage": []}
    for _ in range(args.rounds):
        ways["compose (email.mime)"].append(per_message(lambda: compose(*letter), args.messages))
        ways["EmailMessage"].append(per_message(lambda: _compose_unicode(*letter), args.messages))
    for name, rounds in ways.items():
        print(f"{name:<22} median {statistics.median(rounds):5.0f} µs of CPU per message "
              f"(rounds: {', '.join(f'{r:.0f}' for r in rounds)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
