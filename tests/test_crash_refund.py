"""After kill -9, charges with no delivery record are refunded at the next start (12.11).

A real process charges two requests, delivers (and records) one, and is killed with
SIGKILL before it can answer the other. The next start refunds exactly the undelivered
charge once it is older than ANSWER_DEADLINE, never a delivered one, never a young one
(another replica may still be answering it). Both backends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

from bot.config import Settings
from bot.model import UserRef
from bot.state.accounts import ANSWER_DEADLINE, StateAccounts
from bot.state.policy import utc_now

ROOT = Path(__file__).resolve().parent.parent
ALICE = UserRef("slack", "T1", "U1", "alice")

CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from bot.app import open_service
    from bot.config import Settings
    from bot.model import Request, UserRef

    async def main() -> None:
        from pathlib import Path
        settings = Settings(codes_db=Path(sys.argv[1]), database_url=sys.argv[2],
                            quota={"guest_plan": "unlimited"})
        user = UserRef("slack", "T1", "U1", "alice")
        async with open_service(settings) as service:
            delivered = Request(user, "/code E11.9", request_id="slack:evt:DELIVERED")
            await service.handle(delivered)
            await service.delivered(delivered)
            await service._accounts.flush()  # the delivery record is written
            await service.handle(Request(user, "/code I10", request_id="slack:evt:LOST"))
            print("charged", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # dies before answering

    asyncio.run(main())
    """
)


def test_undelivered_charge_is_refunded_after_kill_9(state_url: str, codes_db_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(codes_db_path), state_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.strip() == "charged"
    settings = Settings(database_url=state_url, quota={"guest_plan": "unlimited"})

    async def restart(later: timedelta) -> tuple[int, int]:
        accounts = await StateAccounts.open(settings, now=lambda: utc_now() + later)
        try:
            refunded = await accounts.refund_undelivered()
            return refunded, sum(total for _, _, total in await accounts.ledger.top_users(ALICE))
        finally:
            await accounts.close()

    # a young charge may still be answered by another replica: kept
    assert asyncio.run(restart(timedelta(0))) == (0, 2)
    # past the deadline: the lost one is refunded, the delivered one stays
    assert asyncio.run(restart(ANSWER_DEADLINE + timedelta(seconds=5))) == (1, 1)
    assert asyncio.run(restart(ANSWER_DEADLINE + timedelta(seconds=5))) == (0, 1)
