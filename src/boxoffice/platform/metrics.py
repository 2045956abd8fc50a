"""Prometheus metrics: HTTP per route, the bus, and business counters services add with ``counter``."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.responses import Response

HTTP_REQUESTS = Counter(
    "boxoffice_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "boxoffice_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BUS_PUBLISHED = Counter("boxoffice_bus_events_published_total", "Events moved from an outbox to the bus", ["service"])
BUS_PUBLISHES = Counter(
    "boxoffice_bus_publishes_total", "Publishes of a relay that moved events (each one write to the bus)", ["service"]
)
BUS_CONSUMED = Counter("boxoffice_bus_events_consumed_total", "Events handled by a consumer group", ["group", "topic"])
BUS_POLLS = Counter(
    "boxoffice_bus_polls_total",
    "Polls of a consumer group that returned events (events consumed / polls: the group's batch size)",
    ["group"],
)
BUS_DEAD_LETTERS = Counter(
    "boxoffice_bus_dead_letters_total",
    "Events a consumer group gave up on and wrote to its dead letters",
    ["group", "topic"],
)
BUS_RETRIES = Counter(
    "boxoffice_bus_event_retries_total",
    "Failed attempts at an event that its consumer group will try again (after a back-off)",
    ["group", "topic"],
)
BUS_CONSUMER_LAG = Gauge(
    "boxoffice_bus_consumer_lag",
    "Events in a partition that a consumer group has not handled yet (the log's end minus the group's position)",
    ["group", "topic", "partition"],
)
DB_STATEMENTS = Counter(
    "boxoffice_db_statements_total", "SQL statements sent to a database (BEGIN and COMMIT too)", ["database"]
)
OUTBOX_BACKLOG = Gauge("boxoffice_outbox_backlog", "Events waiting in a service's outbox (0 once drained)", ["service"])


_LABELLED_LIMIT = 10_000
_requests_by_labels: dict[tuple[str, str, str, int], Counter] = {}
_latency_by_labels: dict[tuple[str, str, str], Histogram] = {}


def observe_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    """Count and time one answered request. The labelled series are looked up once and kept: ``labels()``
    checks and joins its label values under a lock on every call, a few microseconds per request."""
    key = (service, method, route, status)
    requests = _requests_by_labels.get(key)
    if requests is None:
        if len(_requests_by_labels) >= _LABELLED_LIMIT:  # a client making up methods: stay bounded
            _requests_by_labels.clear()
        requests = _requests_by_labels[key] = HTTP_REQUESTS.labels(service, method, route, str(status))
    requests.inc()
    latency = _latency_by_labels.get(key[:3])
    if latency is None:
        if len(_latency_by_labels) >= _LABELLED_LIMIT:
            _latency_by_labels.clear()
        latency = _latency_by_labels[key[:3]] = HTTP_LATENCY.labels(service, method, route)
    latency.observe(seconds)


def counter(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
    """A business counter, e.g. ``counter("boxoffice_users_registered_total", "...")``."""
    return Counter(name, documentation, list(labels))


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

