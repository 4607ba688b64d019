"""`python -m adapters.healthcheck`: the container HEALTHCHECK (exit 0 when alive).

Asks `/healthz` on the operations port (`CODEBOT_HEALTH_PORT`, the Discord process) or,
when that is unset or 0, on the Slack server's port (3000, as `codebot run` serves it).
Liveness only: readiness (`/readyz`) is for load balancers, so a state database outage
makes a replica unready, not restarted in a loop.
"""

from __future__ import annotations

import os
import sys
import urllib.request

DEFAULT_SLACK_PORT = "3000"


def main() -> int:
    """0 when `/healthz` answers 200 within 2 s, else 1."""
    port = os.environ.get("CODEBOT_HEALTH_PORT", "")
    if not port.isdigit() or port == "0":
        port = DEFAULT_SLACK_PORT
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return 0 if answer.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
