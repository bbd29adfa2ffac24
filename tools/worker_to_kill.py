"""A worker process for the kill test (tests/subsidies/test_cycle.py, `python -m tools.worker_to_kill KEY`):
runs one job key through the real runner, says when the settlement's effects are written (still
uncommitted: FUPIN_FAULT_SLEEP_SECONDS holds the commit back), and waits there to be killed. Not a test
itself, so it lives outside tests/."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from fupin.db import app_url, make_engine, make_sessionmaker
from fupin.settings import get_settings
from fupin_worker import kinds, runner


async def main(key: str) -> None:
    settings = get_settings()
    real = kinds.HANDLERS["subsidy.settlement"]

    async def announcing(session: Any, job: Any) -> dict[str, Any]:
        result = await real(session, job)
        print("EFFECTS-WRITTEN", flush=True)
        return result

    kinds.HANDLERS["subsidy.settlement"] = announcing
    engine = make_engine(app_url(settings), name="worker-to-kill", pool_size=1)
    print(await runner.execute(make_sessionmaker(engine), settings, key), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
