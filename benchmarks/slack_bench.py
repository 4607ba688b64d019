"""Slack benchmark: end-to-end slash command lookups through the real HTTP server.

The real adapter (bolt AsyncApp + aiohttp, signature verification, users.info against the
fake Slack Web API) and the real LookupService (code DB + a fresh SQLite state DB, every
lookup charged once in the ledger) run in this process; a client sends signed `/code`
form posts, 50 at a time, 5,000 in all, and times each until the card arrives in the ack
body. Everything shares one event loop, so the figure is for one core. Quota uses an
unlimited plan so nothing is refused.

`run()` returns the figures; `python -m benchmarks.slack_bench` prints them as JSON.
Target (issue 4): p99 ≤ 50 ms, 0 errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from adapters.runtime import run_server
from adapters.slack_blocks import block_kit_problems
from benchmarks.common import configured_codes_db, percentile
from bot.model import Reply, Request, UserRef
from tests.fakes.fake_slack import FakeSlack, slack_signature
from tests.fakes.slack_harness import (
    SIGNING_SECRET,
    UNLIMITED_QUOTA,
    running_slack,
    slack_settings,
)

TOTAL = 5_000
CONCURRENCY = 50
USERS = 50
TARGET_P99_MS = 50.0
# The first waves of requests open the client's 50 connections and meet 50 new users (one
# users.info call each); `steady_p99_ms` leaves them out, `p99_ms` counts every request.
COLD_WAVES = 2
CODES = ["E11.9", "I10", "A0425", "S72.001A", "0DTJ4ZZ", "J44.9", "N39.0", "L1810", "E11", "Z00.00"]


# ---------------------------------------------------------------- the load generator (Slack)


async def _load(url: str, response_url: str, total: int, concurrency: int) -> dict[str, Any]:
    """Send `total` signed slash commands, `concurrency` at a time; time each one."""
    latencies: list[float] = []
    steady: list[float] = []  # after the cold first waves (new connections, new users)
    errors: list[str] = []
    problems: list[str] = []
    validated: set[str] = set()
    counter = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(number: int) -> None:
            code = CODES[number % len(CODES)]
            form = urlencode(
                {
                    "team_id": "T0001",
                    "channel_id": "C0001",
                    "user_id": f"U{number % USERS:05d}",
                    "user_name": "bench",
                    "command": "/code",
                    "text": code,
                    "response_url": response_url,
                    "trigger_id": f"bench.{number}",
                }
            )
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": slack_signature(SIGNING_SECRET, stamp, form),
            }
            started = time.perf_counter()
            try:
                async with session.post(url, data=form.encode(), headers=headers) as response:
                    status, body = response.status, await response.read()
            except Exception as error:  # count, never stop the run
                errors.append(type(error).__name__)
                return
            latencies.append((time.perf_counter() - started) * 1000)
            if number >= concurrency * COLD_WAVES:
                steady.append(latencies[-1])
            payload = json.loads(body) if status == 200 and body.startswith(b"{") else {}
            if not any(b.get("type") == "header" for b in payload.get("blocks", [])):
                errors.append(f"HTTP {status}: {body[:80]!r}")
            elif code not in validated:  # one full Block Kit check per distinct answer
                validated.add(code)
                problems.extend(block_kit_problems(payload))

        async def worker() -> None:
            for number in counter:
                await one(number)

        wall = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - wall
    latencies.sort()
    return {
        "requests": total,
        "concurrency": concurrency,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "block_kit_violations": len(problems),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p90_ms": round(percentile(latencies, 90), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "steady_p99_ms": round(percentile(steady, 99), 2),
        "max_ms": round(latencies[-1], 2) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
        "throughput_rps": round(total / wall, 1) if wall else None,
    }


def _load_process(url: str, response_url: str, total: int, concurrency: int, out: Any) -> None:
    out.send(asyncio.run(_load(url, response_url, total, concurrency)))
    out.close()


# ---------------------------------------------------------------- the server side


class _CannedReplies:
    """Stand-in service answering each code with a reply computed once by the real one.

    Used for the `adapter_only` figure: the same HTTP + bolt + Block Kit path with the
    lookup/quota/state work taken out, to show where the time goes.
    """

    def __init__(self, replies: dict[str, Reply]) -> None:
        self._replies = replies

    async def handle(self, request: Request) -> Reply:
        """The canned reply for the code in `request.text`."""
        return self._replies[request.text]

    async def delivered(self, request: Request) -> None:
        """Nothing to record: no state database in this figure."""

    async def readiness(self) -> dict[str, str]:
        """Always ready: nothing behind it."""
        return {"canned": "ok"}


async def _bench(
    total: int, concurrency: int, codes_db: Path, separate_client: bool, *, canned: bool = False
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as state_dir:
        async with FakeSlack() as fake:
            settings = slack_settings(fake, Path(state_dir), codes_db, quota=UNLIMITED_QUOTA)
            async with running_slack(fake, settings, warm=True) as harness:
                # warm up: auth.test, caches, first SQLite pages (not measured)
                for code in CODES:
                    await harness.sender.command(code, user="UWARMUP")
                if canned:
                    real = harness.service.inner
                    replies = {
                        code: await real.handle(
                            Request(UserRef("slack", "T0001", "UCANNED"), code, request_id=code)
                        )
                        for code in CODES
                    }
                    harness.service.inner = _CannedReplies(replies)
                response_url = fake.response_url()
                if not separate_client:
                    figures = await _load(harness.url, response_url, total, concurrency)
                else:
                    # Slack's side runs in its own process: the server keeps this core
                    context = multiprocessing.get_context("spawn")
                    receiver, sender = context.Pipe(duplex=False)
                    client = context.Process(
                        target=_load_process,
                        args=(harness.url, response_url, total, concurrency, sender),
                    )
                    client.start()
                    loop = asyncio.get_running_loop()
                    figures = await loop.run_in_executor(None, receiver.recv)
                    await loop.run_in_executor(None, client.join)
                figures["block_kit_violations"] += len(fake.violations)
                figures["web_api_calls"] = len(fake.calls)
                fake.violations.clear()  # reported in the figures, not raised
    figures["client"] = "separate process" if separate_client else "same event loop"
    return figures


def run(
    total: int = TOTAL, concurrency: int = CONCURRENCY, *, separate_client: bool = True
) -> dict[str, Any]:
    """Run the benchmark; returns the figures with the target and a pass flag.

    By default the load generator (Slack's side) runs in a separate process so that the
    server's event loop has one core to itself; `separate_client=False` runs both in one
    loop (a harsher, single-core-for-everything figure).
    """
    for name in ("slack_bolt", "slack_sdk", "codebot.slack", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    codes_db = configured_codes_db()
    # The same event loop as `codebot serve slack` (uvloop where installed).
    figures = run_server(_bench(total, concurrency, codes_db, separate_client))
    adapter = run_server(_bench(total, concurrency, codes_db, separate_client, canned=True))
    figures["adapter_only"] = {
        key: adapter[key] for key in ("errors", "p50_ms", "p99_ms", "throughput_rps")
    }
    figures["target_p99_ms"] = TARGET_P99_MS
    figures["ok"] = (
        figures["errors"] == 0
        and figures["block_kit_violations"] == 0
        and figures["p99_ms"] <= TARGET_P99_MS
    )
    figures["steady_ok"] = figures["errors"] == 0 and figures["steady_p99_ms"] <= TARGET_P99_MS
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
