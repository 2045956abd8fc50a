"""Analytics: one-minute sales windows from ``ticket-bookings`` to ``analytics-results``, and live charts."""
