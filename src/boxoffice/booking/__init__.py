"""booking: inventory (seat and capacity state), holds and orders. Never sells a seat twice."""
