"""The process's signals on the event loop: SIGTERM/SIGINT stop, SIGHUP reloads.

Shared by ``gateway serve`` and ``gateway web``. Handlers go through
``loop.add_signal_handler`` (they run on the loop, between tasks), and only in the main thread:
tests that run a service in another thread drive its ``stop`` event instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable

__all__ = ["signals"]


@contextlib.asynccontextmanager
async def signals(stop: asyncio.Event, reload: Callable[[], None]) -> AsyncIterator[None]:
    """SIGTERM/SIGINT set ``stop``; SIGHUP calls ``reload`` (main thread only; elsewhere a no-op)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    try:
        for number, callback in ((signal.SIGTERM, stop.set), (signal.SIGINT, stop.set), (signal.SIGHUP, reload)):
            try:
                loop.add_signal_handler(number, callback)
            except (RuntimeError, ValueError):  # not the main thread (tests drive ``stop`` instead)
                continue
            installed.append(number)
        yield
    finally:
        for number in installed:
            loop.remove_signal_handler(number)
