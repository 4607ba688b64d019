"""Discord adapter speed: autocomplete answer time and end-to-end slash commands.

- Autocomplete, in-process: the adapter's `choices()` (service autocomplete + Discord
  choice building) for one- to three-word prefixes as a user types them, over every code
  set. Target p95 ≤ 20 ms (Discord allows 3 s; typing feels instant well below 100 ms).
- End to end: `/code <code>` dispatched by the fake gateway, through the real discord.py
  client and the real service, until the interaction callback reaches the fake's REST API.
  Target p99 ≤ 50 ms. Quota plan: unlimited, so every request does the full lookup.

Run: `CODEBOT_CODES_DB=data/build/codes.sqlite .venv/bin/python -m benchmarks.discord_bench`
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from adapters.discord_bot import DiscordAdapter, running_bot
from benchmarks.common import configured_codes_db, percentile
from bot.app import open_service
from bot.config import Settings
from tests.fakes.fake_discord import Call, FakeDiscord

AUTOCOMPLETE_TARGET_MS = 20.0
SLASH_TARGET_MS = 50.0
# What users type: codes as they grow, and 1-3 word phrases (each is typed letter by letter,
# so every prefix of every word is measured).
TYPED = [
    "E11.9",
    "S72.001A",
    "0DTJ4ZZ",
    "A0425",
    "I10",
    "J45.909",
    "M54.5",
    "Z00.00",
    "L1810",
    "diabetes",
    "type 2 diabetes",
    "knee brace",
    "heart failure",
    "fracture of femur",
    "chronic kidney disease",
    "asthma",
    "copd",
    "htn",
    "wheelchair",
    "hip replacement",
    "ambulance",
    "pneumonia",
    "colonoscopy",
    "insulin pump",
    "urinary tract infection",
]
LOOKUPS = ["E11.9", "I10", "S72.001A", "0DTJ4ZZ", "A0425", "J45.909", "knee brace", "E11"]


def _prefixes() -> list[str]:
    prefixes: list[str] = []
    for text in TYPED:
        prefixes.extend(text[:n] for n in range(1, len(text) + 1) if text[:n].strip())
    return prefixes


def _summary(samples_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(samples_ms),
        "p50_ms": round(statistics.median(samples_ms), 3),
        "p95_ms": round(percentile(samples_ms, 95), 3),
        "p99_ms": round(percentile(samples_ms, 99), 3),
        "max_ms": round(max(samples_ms), 3),
    }


def _callback_of(interaction_id: str) -> Callable[[Call], bool]:
    prefix = f"/interactions/{interaction_id}/"
    return lambda call: call.path.startswith(prefix)


def _bench_autocomplete(adapter: DiscordAdapter, rounds: int = 3) -> dict[str, Any]:
    prefixes = _prefixes()
    cold: list[float] = []
    for prefix in prefixes:  # first pass: cold caches (reported separately)
        start = time.perf_counter()
        adapter.choices(prefix)
        cold.append((time.perf_counter() - start) * 1000)
    samples: list[float] = []
    for _ in range(rounds):
        for prefix in prefixes:
            start = time.perf_counter()
            adapter.choices(prefix)
            samples.append((time.perf_counter() - start) * 1000)
    return {**_summary(samples), "cold_first_pass": _summary(cold)}


async def _bench_slash(iterations: int) -> tuple[dict[str, Any], dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        codes_db = configured_codes_db()
        async with FakeDiscord() as fake:
            settings = Settings(
                codes_db=codes_db,
                database_url=f"sqlite:///{tmp}/state.sqlite",
                quota={"guest_plan": "unlimited"},
                discord_token="bench",
                discord_api_url=fake.api_url,
                discord_gateway_url=fake.gateway_url,
            )
            async with open_service(settings) as service, running_bot(settings, service) as adapter:
                await asyncio.wait_for(adapter.ready.wait(), 10)
                autocomplete = _bench_autocomplete(adapter)
                samples: list[float] = []
                for index in range(iterations + 20):
                    # Different users so per-user state does not make it artificially warm.
                    payload = fake.slash_payload(
                        LOOKUPS[index % len(LOOKUPS)], user_id=str(700000000000000100 + index)
                    )
                    start_calls = len(fake.calls)
                    start = time.perf_counter()
                    await fake.dispatch("INTERACTION_CREATE", payload)
                    await fake.wait_for_call(_callback_of(str(payload["id"])), after=start_calls)
                    if index >= 20:  # the first ones warm up connections and caches
                        samples.append((time.perf_counter() - start) * 1000)
                return autocomplete, _summary(samples)


def run(iterations: int = 300) -> dict[str, Any]:
    """Measure both figures; returns them with their targets and a pass flag."""
    logging.getLogger("discord").setLevel(logging.ERROR)
    autocomplete, slash = asyncio.run(_bench_slash(iterations))
    return {
        "autocomplete": {**autocomplete, "target_p95_ms": AUTOCOMPLETE_TARGET_MS},
        "slash_end_to_end": {**slash, "target_p99_ms": SLASH_TARGET_MS},
        "ok": autocomplete["p95_ms"] <= AUTOCOMPLETE_TARGET_MS
        and slash["p99_ms"] <= SLASH_TARGET_MS,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
