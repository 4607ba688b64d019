"""Operations endpoints: `/healthz` (liveness), `/readyz` (readiness), `/metrics`.

The Slack server adds `/readyz` and `/metrics` next to its own `/healthz`; the Discord
process, which has no HTTP server of its own, serves all three on `CODEBOT_HEALTH_PORT`
(0 = off). `/readyz` answers 200 only when the state database and the code database both
answer a query, so a load balancer or orchestrator sends no traffic to a replica that
cannot charge or look up; its body says which part failed (never a secret: the state
database is named without its password).
"""

from __future__ import annotations

import logging
from typing import Protocol

from aiohttp import web

from bot.metrics import exposition

log = logging.getLogger("codebot.ops")

READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"


class ReadinessSource(Protocol):
    """What `/readyz` asks: `bot.service.LookupService.readiness`."""

    async def readiness(self) -> dict[str, str]:
        """ "ok" or the problem, per part (state, codes)."""
        ...


def add_ops_routes(
    application: web.Application, service: ReadinessSource, *, health: bool = False
) -> None:
    """Add `/readyz` and `/metrics` (and `/healthz` when `health`) to an aiohttp app."""

    async def ready(_request: web.Request) -> web.Response:
        try:
            checks = await service.readiness()
        except Exception:
            log.exception("readiness check failed")
            checks = {"service": "error"}
        ok = all(value == "ok" for value in checks.values())
        return web.json_response({"ready": ok, **checks}, status=200 if ok else 503)

    async def metrics(_request: web.Request) -> web.Response:
        body, content_type = exposition()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def alive(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    application.router.add_get(READY_PATH, ready)
    application.router.add_get(METRICS_PATH, metrics)
    if health:
        application.router.add_get(HEALTH_PATH, alive)


async def start_ops_server(
    service: ReadinessSource, port: int, host: str = "0.0.0.0"
) -> web.AppRunner:
    """Serve `/healthz`, `/readyz`, `/metrics` on `port` (0: any free port); returns the
    runner (its `addresses` give the port; `cleanup()` stops it)."""
    application = web.Application()
    add_ops_routes(application, service, health=True)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("operations endpoints on port %s", runner.addresses[0][1])
    return runner
