"""Seeds 000/001's k6 load test as a Locust scenario: a ramp of 10 -> 150 buyers, thresholds p95 < 500 ms, errors < 1 %.

The seed's stages (15 minutes): 0 -> 10 users in 1 min, -> 50 in 3, -> 100 in 5, -> 150 in 3, -> 50 in 2,
-> 0 in 1. ``RAMP_TIME_SCALE`` shortens every stage by the same factor (``0.2``: 3 minutes). The users are
``Buyer`` from ``shop_users.py``: home page, events, an event, a purchase, my orders, health. Headless only,
against 127.0.0.1 (``loadtest/run_seed_loads.sh`` starts boxoffice and prints the verdict):

    locust -f loadtest/locust_ramp.py --headless --host http://127.0.0.1:8000 --only-summary
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from locust import LoadTestShape, events
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).parent))
from shop_users import Buyer

__all__ = ["Buyer", "SeedRamp"]

SCALE = float(os.environ.get("RAMP_TIME_SCALE", "1.0"))
STAGES = [(60, 10), (180, 50), (300, 100), (180, 150), (120, 50), (60, 0)]  # (seconds, users at its end)


class SeedRamp(LoadTestShape):
    """Linear ramps between the seed's stage targets."""

    def tick(self) -> tuple[int, float] | None:
        now = self.get_run_time()
        start, users = 0.0, 0
        for seconds, target in STAGES:
            length = seconds * SCALE
            if now < start + length:
                current = users + (target - users) * (now - start) / length
                return max(1, round(current)), 10.0
            start, users = start + length, target
        return None


@events.quitting.add_listener
def verdict(environment: Environment, **_: Any) -> None:
    total = environment.stats.total
    p95 = total.get_response_time_percentile(0.95)
    errors = total.num_failures / max(1, total.num_requests)
    ok = p95 < 500 and errors < 0.01
    print(f"seed ramp: {total.num_requests} requests, {total.total_rps:.1f} req/s, p50 "
          f"{total.get_response_time_percentile(0.5):.0f} ms, p95 {p95:.0f} ms, p99 "
          f"{total.get_response_time_percentile(0.99):.0f} ms, errors {100 * errors:.2f} % -> "
          f"{'PASS' if ok else 'FAIL'} (p95 < 500 ms, errors < 1 %)")
