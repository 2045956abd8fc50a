"""Tickets: issued tickets with signed codes, their PDFs, check-in, and ID-proof uploads."""
