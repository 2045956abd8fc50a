"""Seed 003's railway load test as a Locust scenario: a fixed number of requests (100,000 by default).

Travellers (``shop_users.Traveller``) search trains, open a run and book a seat, without pauses; the run
stops when ``RAIL_REQUESTS`` requests have been made, and prints requests/s, percentiles and errors.
Headless only, against 127.0.0.1 (``loadtest/run_seed_loads.sh`` starts boxoffice first):

    RAIL_REQUESTS=100000 locust -f loadtest/locust_rail.py --headless --host http://127.0.0.1:8000 -u 50 -r 10
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from locust import constant, events
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).parent))
import shop_users

LIMIT = int(os.environ.get("RAIL_REQUESTS", "100000"))
_environments: list[Environment] = []


class RailTraveller(shop_users.Traveller):
    wait_time = constant(0)


@events.init.add_listener
def remember(environment: Environment, **_: Any) -> None:
    _environments.append(environment)


@events.request.add_listener
def stop_at_limit(**_: Any) -> None:
    runner = _environments[0].runner if _environments else None
    if runner is not None and runner.stats.total.num_requests >= LIMIT and runner.state not in ("stopping", "stopped"):
        runner.quit()


@events.quitting.add_listener
def report(environment: Environment, **_: Any) -> None:
    total = environment.stats.total
    errors = total.num_failures / max(1, total.num_requests)
    print(f"seed rail: {total.num_requests} requests in {total.last_request_timestamp - total.start_time:.0f} s, "
          f"{total.total_rps:.1f} req/s, p50 {total.get_response_time_percentile(0.5):.0f} ms, p95 "
          f"{total.get_response_time_percentile(0.95):.0f} ms, p99 {total.get_response_time_percentile(0.99):.0f} ms, "
          f"errors {100 * errors:.2f} %")
