"""Booking's use cases, one module per area, each function ``verb_noun(deps, ...)``:

- ``holds``: place, read and release holds (the claim on inventory);
- ``orders``: place, list, read, confirm (for payments) and cancel orders;
- ``expiry``: how a hold ends (released or expired) and the sweeper of expired holds;
- ``history``: an order's audit trail, merged from every service that touched it;
- ``stock``: what is left, for catalog's pages;
- ``catalog_feed``: booking's copy of what is on sale, built from catalog's events.

Order placement follows pretix's three phases without its race: validate outside the transaction; check
and write inside ONE transaction whose writes are conditional (store.py, inventory.py); side effects
(tickets, refunds, analytics) only through the outbox after commit. Every state change of a hold or an
order records an audit entry in the same transaction (``common.record``).
"""
