"""A claimer process for the concurrency test: ``python -m tests.store.claimer URL OUT GATE``.

Opens the store, reports ready (``OUT.ready``), waits for the GATE file (so that all claimers
start together), then claims inbound items until none are left for a while, finishes each as
``delivered`` and writes the ids it took to OUT (JSON), the way a second gateway instance would.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from gateway.clock import SystemClock
from gateway.store import Store

__all__ = ["claim_all"]


async def claim_all(store: Store, *, batch: int = 3, idle_rounds: int = 20, work: float = 0.002) -> list[int]:
    """Claim and finish inbound work until ``idle_rounds`` claims in a row find nothing.

    Each item takes ``work`` seconds, as verification would: without any pause between its
    transactions, one SQLite process can starve another (``busy_timeout`` polls, it does not queue).
    """
    taken: list[int] = []
    idle = 0
    while idle < idle_rounds:
        items = await store.claim(["inbound"], limit=batch)
        if not items:
            idle += 1
            await asyncio.sleep(0.005)
            continue
        idle = 0
        for item in items:
            taken.append(item.id)
            await asyncio.sleep(work)
            await store.transition(item.id, "delivered", reason="done", event="delivered", expect="active")
    return taken


def _wait_for(gate: Path) -> None:
    while not gate.exists():
        time.sleep(0.005)


async def _main(url: str, out: Path, gate: Path) -> list[int]:
    store = await Store.open(url, clock=SystemClock())
    try:
        await asyncio.to_thread(out.with_suffix(".ready").touch)
        await asyncio.to_thread(_wait_for, gate)
        return await claim_all(store)
    finally:
        await store.close()


if __name__ == "__main__":
    target = Path(sys.argv[2])
    target.write_text(json.dumps(asyncio.run(_main(sys.argv[1], target, Path(sys.argv[3])))), encoding="utf-8")
