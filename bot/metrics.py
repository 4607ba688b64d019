"""Prometheus metrics (prometheus-client), served at `/metrics` by adapters/ops_http.py.

What an operator of N replicas watches: requests by platform, command and outcome, their
latency, charges and refusals, refunds, and answers the platform would not take. Labels
are small fixed sets (command kinds, reply kinds, platforms), never user text or ids, so
the series count stays bounded whatever users type.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter(
    "codebot_requests_total",
    "Chat requests answered, by platform, command and outcome (reply kind or duplicate)",
    ["platform", "command", "outcome"],
)
LATENCY = Histogram(
    "codebot_request_seconds",
    "Time to answer one request in the service (state database included)",
    ["platform", "command"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CHARGES = Counter(
    "codebot_charges_total",
    "Paid answers: charged, refused (quota used up) or replayed (a retry, not charged)",
    ["platform", "result"],
)
REFUNDS = Counter(
    "codebot_refunds_total",
    "Charges given back: delivery (the platform refused the answer) or crash (never answered)",
    ["reason"],
)
DELIVERY_FAILURES = Counter(
    "codebot_delivery_failures_total",
    "Answers the platform did not accept (HTTP errors, refused messages)",
    ["platform"],
)
STATE_ERRORS = Counter(
    "codebot_state_errors_total", "Requests refused because the state database failed", []
)

KNOWN_PLATFORMS = frozenset({"slack", "discord", "console"})


def platform_label(platform: str) -> str:
    """A bounded label: known platforms by name, anything else as "other"."""
    return platform if platform in KNOWN_PLATFORMS else "other"


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
