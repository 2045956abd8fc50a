"""Grafana dashboards as code: deploy/generate.py writes them to grafana/dashboards/*.json.

Every panel's query is PromQL over the metrics boxoffice exports (boxoffice.platform.metrics and the business
counters of each service); tests/deploy/test_observability.py parses each query with promtool and checks
that each metric name is one the code defines.

- ``boxoffice-red``: rate, errors and duration per service (a ``service`` variable repeats the row).
- ``boxoffice-flash-sale``: holds placed and refused, orders, payments, tickets sold and issued.
- ``boxoffice-bus``: outbox backlog, events published and consumed, consumer lag, background loops.
- ``boxoffice-autoscaling``: replicas against load (kube-state-metrics, as on every cluster with an HPA).
- ``boxoffice-analytics``: the analytics windows and the tracking collector.
"""

from __future__ import annotations

from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


def _panel(panel_id: int, title: str, exprs: dict[str, str], *, unit: str = "short", x: int = 0, y: int = 0,
           width: int = 12, height: int = 8, kind: str = "timeseries") -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": width, "h": height},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
            for i, (legend, expr) in enumerate(exprs.items())
        ],
    }


def _board(uid: str, title: str, panels: list[dict[str, Any]], variables: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["boxoffice"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": variables or []},
        "panels": panels,
    }


def _grid(panels: list[tuple[str, dict[str, str], str]]) -> list[dict[str, Any]]:
    return [
        _panel(i + 1, title, exprs, unit=unit, x=(i % 2) * 12, y=(i // 2) * 8)
        for i, (title, exprs, unit) in enumerate(panels)
    ]


def red() -> dict[str, Any]:
    sel = 'service=~"$service"'
    panels = _grid([
        ("Requests per second", {"{{service}} {{status}}": f"sum by (service, status) (rate(boxoffice_http_requests_total{{{sel}}}[$__rate_interval]))"}, "reqps"),
        ("Errors (5xx share)", {"{{service}}": (
            f'sum by (service) (rate(boxoffice_http_requests_total{{{sel},status=~"5.."}}[$__rate_interval]))'
            f" / sum by (service) (rate(boxoffice_http_requests_total{{{sel}}}[$__rate_interval]))"
        )}, "percentunit"),
        ("Latency p50 / p99", {
            "p50 {{service}}": f"histogram_quantile(0.5, sum by (service, le) (rate(boxoffice_http_request_duration_seconds_bucket{{{sel}}}[$__rate_interval])))",
            "p99 {{service}}": f"histogram_quantile(0.99, sum by (service, le) (rate(boxoffice_http_request_duration_seconds_bucket{{{sel}}}[$__rate_interval])))",
        }, "s"),
        ("Slowest routes (p99)", {"{{method}} {{route}}": (
            f"topk(10, histogram_quantile(0.99, sum by (method, route, le) "
            f"(rate(boxoffice_http_request_duration_seconds_bucket{{{sel}}}[$__rate_interval]))))"
        )}, "s"),
        ("Client breakers (0 closed, 1 half-open, 2 open)", {"{{client}}": "max by (client) (boxoffice_client_breaker_state)"}, "short"),
        ("Client breaker transitions", {"{{client}} to {{to}}": "sum by (client, to) (increase(boxoffice_client_breaker_transitions_total[$__rate_interval]))"}, "short"),
        ("Gateway retries on connection errors (rollouts, restarts)", {"{{reason}}": "sum by (reason) (rate(boxoffice_gateway_retries_total[$__rate_interval]))"}, "ops"),
        ("Service-to-service retries (connection errors, timeouts, 502/503/504)", {"{{client}} {{reason}}": "sum by (client, reason) (rate(boxoffice_client_retries_total[$__rate_interval]))"}, "ops"),
    ])
    variables = [{
        "name": "service",
        "type": "query",
        "datasource": DATASOURCE,
        "query": "label_values(boxoffice_http_requests_total, service)",
        "includeAll": True,
        "multi": True,
        "current": {"text": "All", "value": "$__all"},
    }]
    return _board("boxoffice-red", "boxoffice: rate, errors, duration", panels, variables)


def flash_sale() -> dict[str, Any]:
    return _board("boxoffice-flash-sale", "boxoffice: flash sale", _grid([
        ("Holds by outcome", {"{{outcome}}": "sum by (outcome) (rate(boxoffice_holds_total[$__rate_interval]))"}, "ops"),
        ("Orders by status", {"{{status}}": "sum by (status) (rate(boxoffice_orders_total[$__rate_interval]))"}, "ops"),
        ("Payments by status", {"{{status}}": "sum by (status) (rate(boxoffice_payments_total[$__rate_interval]))"}, "ops"),
        ("Tickets sold and issued", {
            "sold": "sum(rate(boxoffice_tickets_sold_total[$__rate_interval]))",
            "issued": "sum(rate(boxoffice_tickets_issued_total[$__rate_interval]))",
            "voided": "sum(rate(boxoffice_tickets_voided_total[$__rate_interval]))",
        }, "ops"),
        ("Checkout latency p99 (holds, orders, payment)", {"{{route}}": (
            'histogram_quantile(0.99, sum by (route, le) (rate(boxoffice_http_request_duration_seconds_bucket'
            '{service=~"booking|payments",method="POST"}[$__rate_interval])))'
        )}, "s"),
        ("Sign-ups and logins", {
            "registered": "sum(rate(boxoffice_users_registered_total[$__rate_interval]))",
            "logins {{outcome}}": "sum by (outcome) (rate(boxoffice_logins_total[$__rate_interval]))",
        }, "ops"),
    ]))


def bus() -> dict[str, Any]:
    return _board("boxoffice-bus", "boxoffice: event bus", _grid([
        ("Outbox backlog", {"{{service}}": "max by (service) (boxoffice_outbox_backlog)"}, "short"),
        ("Events published", {"{{service}}": "sum by (service) (rate(boxoffice_bus_events_published_total[$__rate_interval]))"}, "ops"),
        ("Events consumed", {"{{group}} {{topic}}": "sum by (group, topic) (rate(boxoffice_bus_events_consumed_total[$__rate_interval]))"}, "ops"),
        ("Consumer lag", {"{{group}} {{topic}}": "max by (group, topic) (boxoffice_bus_consumer_lag)"}, "short"),
        ("Event retries and dead letters", {
            "retried {{group}} {{topic}}": "sum by (group, topic) (rate(boxoffice_bus_event_retries_total[$__rate_interval]))",
            "dead-lettered {{group}} {{topic}}": "sum by (group, topic) (increase(boxoffice_bus_dead_letters_total[$__rate_interval]))",
        }, "ops"),
        ("Background loop steps", {"{{loop}} {{outcome}}": "sum by (loop, outcome) (rate(boxoffice_background_runs_total[$__rate_interval]))"}, "ops"),
        ("Background loop step p99", {"{{loop}}": "histogram_quantile(0.99, sum by (loop, le) (rate(boxoffice_background_run_duration_seconds_bucket[$__rate_interval])))"}, "s"),
    ]))


def autoscaling(services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    scaled = "|".join(sorted(f"{n}-api" for n, s in services.items() if s["api"].get("hpa")))
    workers = "|".join(sorted(f"{n}-worker" for n, s in services.items() if s["has_workers"] and s["consumers"]))
    return _board("boxoffice-autoscaling", "boxoffice: autoscaling", _grid([
        ("API replicas (HPA)", {
            "{{horizontalpodautoscaler}} current": f'max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas{{horizontalpodautoscaler=~"{scaled}"}})',
            "{{horizontalpodautoscaler}} desired": f'max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_desired_replicas{{horizontalpodautoscaler=~"{scaled}"}})',
        }, "short"),
        ("Worker replicas (KEDA)", {"{{deployment}}": f'max by (deployment) (kube_deployment_status_replicas{{deployment=~"{workers}"}})'}, "short"),
        ("Requests per second per service", {"{{service}}": "sum by (service) (rate(boxoffice_http_requests_total[$__rate_interval]))"}, "reqps"),
        ("Consumer lag (what KEDA scales on)", {"{{group}}": "max by (group) (boxoffice_bus_consumer_lag)"}, "short"),
    ]))


def analytics() -> dict[str, Any]:
    return _board("boxoffice-analytics", "boxoffice: analytics and tracking", _grid([
        ("Bookings counted in windows", {"{{outcome}}": "sum by (outcome) (rate(boxoffice_analytics_bookings_total[$__rate_interval]))"}, "ops"),
        ("Window results published", {"{{revision}}": "sum by (revision) (rate(boxoffice_analytics_results_total[$__rate_interval]))"}, "ops"),
        ("Analytics consumer lag", {"{{topic}}": 'max by (topic) (boxoffice_bus_consumer_lag{group="analytics"})'}, "short"),
        ("Tracking collector requests", {"{{route}} {{status}}": 'sum by (route, status) (rate(boxoffice_http_requests_total{service="tracking"}[$__rate_interval]))'}, "reqps"),
        ("Tracking collector p99", {"p99": 'histogram_quantile(0.99, sum by (le) (rate(boxoffice_http_request_duration_seconds_bucket{service="tracking",route="/collect"}[$__rate_interval])))'}, "s"),
        ("Tracking processor lag", {"{{topic}}": 'max by (topic) (boxoffice_bus_consumer_lag{group="tracking-processor"})'}, "short"),
    ]))


def dashboards(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        "red": red(),
        "flash-sale": flash_sale(),
        "bus": bus(),
        "autoscaling": autoscaling(services),
        "analytics": analytics(),
    }
