"""Tickets' use cases, one module per area:

- ``issuing``: issue and void on ``ticket-bookings``, render the tickets' PDFs
- ``gates``: check-in
- ``uploads``: ID-proof uploads (the ticket generator in ``functions`` verifies them)
- ``reading``: what customers, gates and booking read

Each handler checks outside the transaction what needs no lock (signatures, file contents, the order's
owner), writes inside one unit of work together with its events and audit entries, and leaves slow work
(PDFs) to a worker.
"""

from __future__ import annotations

TICKETS_TOPIC = "tickets"
