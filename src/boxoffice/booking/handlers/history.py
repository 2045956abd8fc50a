"""An order's history: booking's own audit entries merged with those of payments and tickets.

Like pretix's order log, one list oldest first. A service that cannot answer does not fail the page: its
entries are missing and the answer names it in ``incomplete``.
"""

from __future__ import annotations

import asyncio

from boxoffice.booking import domain, store
from boxoffice.booking.clients import PaymentsClient, PeerUnavailable, TicketsClient
from boxoffice.booking.deps import BookingDeps
from boxoffice.booking.domain import HistoryEntry, OrderHistory
from boxoffice.booking.handlers.common import may_see
from boxoffice.platform.auth import Principal
from boxoffice.platform.problems import NotFound


async def get_order_history(deps: BookingDeps, order_id: str, *, user: Principal) -> OrderHistory:
    """The order's audit trail, for its customer or an admin (404 for anyone else)."""
    async with deps.db.read() as conn:
        order = await store.order_of(conn, order_id)
        if order is None or not may_see(user, order.user_id):
            raise NotFound("No such order.")
        own = await store.order_audit(conn, order.id, order.hold_id)
    peers: list[PaymentsClient | TicketsClient] = [deps.payments, deps.tickets]
    answers = await asyncio.gather(*(_entries(peer, order_id) for peer in peers))
    incomplete = tuple(peer.name for peer, entries in zip(peers, answers, strict=True) if entries is None)
    merged = domain.merge_history([own, *(entries for entries in answers if entries is not None)])
    return OrderHistory(merged, incomplete)


async def _entries(peer: PaymentsClient | TicketsClient, order_id: str) -> list[HistoryEntry] | None:
    try:
        return await peer.order_audit(order_id)
    except PeerUnavailable:
        return None
