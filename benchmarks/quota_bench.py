"""Quota benchmarks: charge throughput on one core, and the multi-process stress run.

`run()` returns the figures for `benchmarks/run_all.py`; `python -m benchmarks.quota_bench`
prints them as JSON. `stress()` is also used (at a smaller size) by
tests/test_quota_stress.py.

Stress: P processes (spawned, each with its own connection) start together and each fires
N concurrent charges (plus a replay of every 10th request id) at one SQLite file whose
tenant has a team plan of Q lookups. Members' own allowance is configured to 0 so that the
team pool is the only source: exactly Q requests may be allowed, P*N - Q refused, and the
ledger (charges table) must agree with the usage counter.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from bot.config import Settings
from bot.model import Request, UserRef
from bot.ports import LookupRecord
from bot.state.accounts import StateAccounts

STRESS_PLAN = "stress_team"
STRESS_TENANT = "TSTRESS"
STRESS_USERS = 50  # members sharing the pool
REPLAY_EVERY = 10


def stress_quota(limit: int) -> dict[str, Any]:
    """The `[quota]` table of the stress run: a team plan of `limit`, nothing per member."""
    return {
        "plans": {
            "guest": {"limit": 0},
            "registered": {"limit": 0},
            STRESS_PLAN: {"limit": limit, "period": "monthly"},
        }
    }


def _settings(url: str, quota: dict[str, Any]) -> Settings:
    return Settings(database_url=url, quota=quota)


async def _charge_many(
    url: str, quota: dict[str, Any], index: int, count: int, barrier: Any
) -> dict[str, int]:
    accounts = await StateAccounts.open(_settings(url, quota))
    try:
        barrier.wait()  # every process is connected: now all fire at once
        ids = [f"p{index}-r{j}" for j in range(count)]
        sends = [(ids[j], j) for j in range(count)]
        sends += [(ids[j], j) for j in range(0, count, REPLAY_EVERY)]  # retried events
        outcomes = await asyncio.gather(
            *(
                accounts.charge(
                    UserRef("slack", STRESS_TENANT, f"U{j % STRESS_USERS}"), request_id, 1
                )
                for request_id, j in sends
            )
        )
    finally:
        await accounts.close()
    fresh = [outcome for outcome in outcomes if not outcome.replayed]
    return {
        "allowed": sum(outcome.allowed for outcome in fresh),
        "refused": sum(not outcome.allowed for outcome in fresh),
        "replayed": len(outcomes) - len(fresh),
    }


def _worker(
    url: str, quota: dict[str, Any], index: int, count: int, barrier: Any, results: Any
) -> None:
    try:
        results.put((index, asyncio.run(_charge_many(url, quota, index, count, barrier))))
    except BaseException as error:  # report instead of hanging the parent
        results.put((index, {"error": repr(error)}))
        raise


async def _prepare(url: str, quota: dict[str, Any]) -> None:
    accounts = await StateAccounts.open(_settings(url, quota))
    try:
        plan = accounts.plans.plans[STRESS_PLAN]
        await accounts.ledger.set_team_plan(UserRef("slack", STRESS_TENANT, "admin"), plan)
    finally:
        await accounts.close()


def stress(
    processes: int = 4, per_process: int = 2500, quota: int = 5000, url: str | None = None
) -> dict[str, Any]:
    """Run the multi-process stress test; return counts and whether the ledger matches.

    `url` is the state database (empty; SQLite or PostgreSQL); default a scratch SQLite file.
    """
    with tempfile.TemporaryDirectory(prefix="codebot-stress-") as scratch:
        db_url = url or f"sqlite:///{Path(scratch) / 'state.sqlite'}"
        quota_table = stress_quota(quota)
        asyncio.run(_prepare(db_url, quota_table))
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(processes)
        results = context.Queue()
        workers = [
            context.Process(
                target=_worker,
                args=(db_url, quota_table, index, per_process, barrier, results),
            )
            for index in range(processes)
        ]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        reports = [results.get(timeout=300) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        seconds = time.perf_counter() - started
        errors = [report for _, report in reports if "error" in report]
        if errors:
            raise RuntimeError(f"stress worker failed: {errors}")
        ledger = asyncio.run(_ledger_figures(db_url))
    requests = processes * per_process
    allowed = sum(report["allowed"] for _, report in reports)
    refused = sum(report["refused"] for _, report in reports)
    return {
        "processes": processes,
        "requests": requests,
        "team_quota": quota,
        "allowed": allowed,
        "refused": refused,
        "replays_not_charged": sum(report["replayed"] for _, report in reports),
        **ledger,
        "exact": allowed == min(quota, requests)
        and refused == requests - allowed
        and ledger["ledger_rows"] == requests
        and ledger["ledger_allowed_cost"] == allowed == ledger["team_counter"],
        "seconds": round(seconds, 2),
        "requests_per_second": round((requests + requests // REPLAY_EVERY) / seconds),
    }


_FIGURES_SQL = (
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN allowed = 1 THEN cost END), 0) FROM charges "
    "WHERE tenant = {p}",
    "SELECT COALESCE(SUM(used), 0) FROM usage WHERE tenant = {p} AND user_id = ''",
)


async def _ledger_figures(url: str) -> dict[str, int]:
    """Ledger rows, allowed cost and the team counter, read straight from the database."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            rows, allowed_cost = connection.execute(
                _FIGURES_SQL[0].format(p="?"), (STRESS_TENANT,)
            ).fetchone()
            counter = connection.execute(
                _FIGURES_SQL[1].format(p="?"), (STRESS_TENANT,)
            ).fetchone()[0]
        connection.close()
    else:
        pg = await asyncpg.connect(url)
        try:
            rows, allowed_cost = await pg.fetchrow(_FIGURES_SQL[0].format(p="$1"), STRESS_TENANT)
            counter = await pg.fetchval(_FIGURES_SQL[1].format(p="$1"), STRESS_TENANT)
        finally:
            await pg.close()
    return {
        "ledger_rows": int(rows),
        "ledger_allowed_cost": int(allowed_cost),
        "team_counter": int(counter),
    }


async def _throughput(url: str, count: int) -> dict[str, float]:
    accounts = await StateAccounts.open(_settings(url, {}))
    try:
        user = UserRef("slack", "TBENCH", "U1", "bench")
        await accounts.ledger.set_user_plan(user, "U1", accounts.plans.plans["unlimited"])
        latencies: list[float] = []
        started = time.perf_counter()
        for i in range(count):
            began = time.perf_counter()
            await accounts.charge(user, f"c{i}", 1)
            latencies.append(time.perf_counter() - began)
        charge_rate = count / (time.perf_counter() - started)
        latencies.sort()

        records = [LookupRecord("icd10cm", "E11.9", "Type 2 diabetes mellitus")]
        started = time.perf_counter()
        for i in range(count):
            request = Request(user, "/code E11.9", request_id=f"d{i}")
            await accounts.charge(user, request.request_id, 1)
            await accounts.record_lookups(request, records)
        charge_record_rate = count / (time.perf_counter() - started)

        started = time.perf_counter()
        for i in range(count):
            await accounts.charge(user, f"c{i}", 1)  # replays: no write
        replay_rate = count / (time.perf_counter() - started)
    finally:
        await accounts.close()
    return {
        "charges_per_second": round(charge_rate),
        "charge_p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "charge_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        "charge_and_record_per_second": round(charge_record_rate),
        "replays_per_second": round(replay_rate),
    }


def throughput(count: int = 20_000, url: str | None = None) -> dict[str, float]:
    """Sequential charges per second on one core (the service's per-request pattern)."""
    with tempfile.TemporaryDirectory(prefix="codebot-bench-") as scratch:
        db_url = url or f"sqlite:///{Path(scratch) / 'state.sqlite'}"
        return asyncio.run(_throughput(db_url, count))


def run() -> dict[str, Any]:
    """All quota figures, SQLite and PostgreSQL side by side: throughput and the stress run."""
    from tests.postgres_server import PostgresServer  # a throwaway real server

    figures: dict[str, Any] = {
        "sqlite": {"throughput": throughput(), "stress": stress()},
    }
    server = PostgresServer.start()
    try:
        figures["postgres"] = {
            "throughput": throughput(url=asyncio.run(server.create_database("bench"))),
            "stress": stress(url=asyncio.run(server.create_database("stress"))),
        }
    finally:
        server.stop()
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
