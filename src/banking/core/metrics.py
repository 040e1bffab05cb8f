"""Prometheus metrics: HTTP traffic by route and status, and business counters.

With several worker processes set `PROMETHEUS_MULTIPROC_DIR` to a shared empty directory
so `/metrics` aggregates all workers (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "banking_http_requests_total", "HTTP requests handled.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "banking_http_request_duration_seconds",
    "Time from request start to the end of the response.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# Business counters: domains increment these with their own labels.
MONEY_MOVEMENTS = Counter(
    "banking_money_movements_total", "Ledger entries by kind and outcome.", ["kind", "status"]
)
AUTH_EVENTS = Counter("banking_auth_events_total", "Authentication events.", ["event"])


def render_latest() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
