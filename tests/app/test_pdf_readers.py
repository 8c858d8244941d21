"""The PDF reading pool outlives Ctrl-C (the gateway shuts it down, not the signal) and a dead worker.

Ctrl-C signals the whole process group, so the pool's workers get the SIGINT the gateway stops
gracefully on. A worker that died of it would fail the PDF it was reading and break the pool
for every later verification. SIGTERM must still end a worker: the pool's own clean-up of a
broken pool sends it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from gateway.app.compose import pdf_readers
from gateway.clock import SystemClock
from gateway.devpki import DevPKI, fingerprint
from gateway.errors import TransientError
from gateway.settings import Settings, VerifySettings
from gateway.verify.pdf import Examiner
from gateway.verify.trust import ExamSettings, TrustStore

T = TypeVar("T")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pids: list[int], within: float = 10.0) -> bool:
    """Whether every process of ``pids`` has ended within ``within`` seconds."""
    deadline = time.monotonic() + within
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_workers_outlive_ctrl_c_until_the_pool_shuts_down() -> None:
    pool = pdf_readers(replace(Settings(), verify=VerifySettings(workers=2)))
    assert pool is not None
    try:
        assert pool.submit(sum, [1, 2]).result(timeout=60) == 3  # the workers are started on use
        workers = list(pool._pool._processes)  # no public way to the pids: the test must signal each one
        assert workers
        for pid in workers:
            os.kill(pid, signal.SIGINT)
        time.sleep(0.5)  # a worker that had not ignored it would be gone by now
        assert all(_alive(pid) for pid in workers)
        assert pool.submit(sum, [3, 4]).result(timeout=60) == 7  # not a BrokenProcessPool
    finally:
        pool.shutdown(wait=True)
    assert _gone(workers)


def test_sigterm_still_ends_a_worker() -> None:
    pool = pdf_readers(replace(Settings(), verify=VerifySettings(workers=2)))
    assert pool is not None
    try:
        assert pool.submit(sum, [1, 2]).result(timeout=60) == 3
        workers = list(pool._pool._processes)
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
        assert _gone(workers)
    finally:
        pool.shutdown(wait=True)


def test_a_pool_whose_worker_died_is_replaced_and_its_pdf_deferred() -> None:
    """A worker killed (the OOM killer): the PDF in flight fails, the next one gets a new pool."""
    pool = pdf_readers(replace(Settings(), verify=VerifySettings(workers=2)))
    assert pool is not None
    try:
        assert pool.submit(sum, [1, 2]).result(timeout=60) == 3
        in_flight = pool.submit(time.sleep, 30)
        os.kill(next(iter(pool._pool._processes)), signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            in_flight.result(timeout=60)
        assert pool.submit(sum, [3, 4]).result(timeout=60) == 7
        assert pool.replaced == 1
    finally:
        pool.shutdown(wait=True)


def test_the_examiner_defers_a_pdf_whose_reader_died(dev_pki: DevPKI) -> None:
    """``BrokenProcessPool`` from the pool is a ``TransientError``: the package is judged again later."""

    class Broken(Executor):
        def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
            future: Future[T] = Future()
            future.set_exception(BrokenProcessPool("A child process terminated abruptly"))
            return future

    store = TrustStore.load([dev_pki.layout.anchor("root")], [fingerprint(dev_pki.certificate("root"))])
    examiner = Examiner(store, SystemClock(), executor=Broken())

    async def scenario() -> None:
        try:
            await examiner.examine_pdf(
                b"%PDF-1.7", name="a.pdf", content_id="c1", is_main=True, settings=ExamSettings()
            )
        finally:
            await examiner.aclose()

    with pytest.raises(TransientError, match=r"the process reading a\.pdf died"):
        asyncio.run(scenario())


def test_one_worker_is_no_pool() -> None:
    assert pdf_readers(replace(Settings(), verify=VerifySettings(workers=1))) is None
