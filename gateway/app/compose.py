"""Building the long-lived judgement and sealing parts from settings, once.

``run`` is the gateway's only ``asyncio.run``: every other piece is a coroutine or a pure
function that expects to be given what it needs (HOUSE.md module map).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509

from gateway.clock import Clock, SystemClock
from gateway.edxml.xmlsafe import XMLLimits
from gateway.errors import ConfigError
from gateway.settings import Settings
from gateway.sign.keys import OrganisationKey
from gateway.sign.openkey import open_organisation_key
from gateway.sign.package import PackageSealer
from gateway.sign.pdfseal import Sealer
from gateway.verify.directory import Directory, load_directory
from gateway.verify.package import Verifier
from gateway.verify.pdf import Examiner
from gateway.verify.policy import Policy, load_policy
from gateway.verify.trust import TrustStore

__all__ = [
    "PdfReaders",
    "Sealing",
    "load_trust_store",
    "open_sealing",
    "open_verifier",
    "pdf_readers",
    "policy_from_settings",
    "reload_policy",
    "run",
]

T = TypeVar("T")
_log = logging.getLogger(__name__)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run the top-level coroutine of a command on a fresh event loop."""
    return asyncio.run(main)


def load_trust_store(settings: Settings) -> TrustStore:
    """The pinned trust anchors of ``[trust]``.

    Raises:
        ConfigError: no anchors configured, or an anchor that does not match its pin.
    """
    trust = settings.trust
    if not trust.anchors:
        raise ConfigError(
            "no trust anchors configured: nothing could ever be verified as trusted",
            hint='set [trust] anchors = ["...pem"] and anchor_sha256 = ["<SHA-256 of each>"] in gateway.toml '
            "(a development PKI: gateway dev-pki DIR writes trust/anchors/ and its fingerprint)",
        )
    return TrustStore.load(trust.anchors, trust.anchor_sha256, trust.intermediates)


def policy_from_settings(settings: Settings, explicit: Path | None = None) -> Policy:
    """``explicit``, else ``[verify] policy``, else the built-in strict default."""
    path = explicit or settings.verify.policy
    return Policy() if path is None else load_policy(path)


def _verifier(settings: Settings, examiner: Examiner, policy: Policy, clock: Clock) -> Verifier:
    directory = Directory() if settings.verify.directory is None else load_directory(settings.verify.directory)
    return Verifier(
        examiner=examiner,
        policy=policy,
        identity=settings.identity,
        directory=directory,
        limits=XMLLimits(max_bytes=settings.edxml.max_package_bytes, max_depth=settings.edxml.max_depth),
        max_attachment_bytes=settings.edxml.max_attachment_bytes,
        request_timeout=settings.verify.fetch_timeout_seconds,
        clock=clock,
    )


def pdf_readers(settings: Settings) -> PdfReaders | None:
    """The process pool that reads PDFs (``[verify] workers``), or ``None`` for a worker thread.

    Reading a PDF (pyHanko's parser, digests, difference analysis) is pure-Python CPU work: in
    threads it holds the GIL, so one process uses one core whatever the number of packages in
    flight. The pool's processes start on first use, from a fork server (never a fork of the
    threaded, looping gateway process). They ignore SIGINT: Ctrl-C reaches the whole process
    group, and the gateway, which stops gracefully on it, shuts the pool down itself (a worker
    that died of it would log a KeyboardInterrupt traceback, fail the PDF it was reading and
    break the pool). SIGTERM still ends a worker: the pool's own clean-up sends it.

    Raises:
        ConfigError: ``workers`` is negative.
    """
    workers = settings.verify.workers
    if workers < 0:
        raise ConfigError(
            f"[verify] workers = {workers} is negative",
            hint="set [verify] workers = 0 (one process per CPU), 1 (no pool) or a process count",
        )
    if workers == 0:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if workers == 1:
        return None
    return PdfReaders(
        functools.partial(
            ProcessPoolExecutor,
            workers,
            mp_context=multiprocessing.get_context("forkserver"),
            # A builtin, pickled by reference: a worker need not import the gateway to run it.
            initializer=signal.signal,
            initargs=(signal.SIGINT, signal.SIG_IGN),
        )
    )


class PdfReaders(Executor):
    """A process pool that replaces itself once one of its processes has died.

    ``ProcessPoolExecutor`` breaks for good when a worker dies (the OOM killer, a signal, a crash
    in C code): every later submission would fail, and every later package be held. The PDFs that
    were in flight fail with ``BrokenProcessPool`` (the examiner defers their packages); the next
    submission starts a new pool.
    """

    def __init__(self, make: Callable[[], ProcessPoolExecutor]) -> None:
        self._make = make
        self._pool = make()
        self._lock = threading.Lock()
        self.replaced = 0
        """How many broken pools were replaced."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn`` in a worker process, in a new pool if the current one is broken."""
        with self._lock:
            try:
                return self._pool.submit(fn, *args, **kwargs)
            except BrokenProcessPool:
                _log.warning("a PDF reader process died: starting a new pool")
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._make()
                self.replaced += 1
                return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the current pool down (see ``Executor.shutdown``)."""
        with self._lock:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


async def _shutdown(pool: Executor | None) -> None:
    if pool is not None:
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


@asynccontextmanager
async def open_verifier(
    settings: Settings, *, policy: Policy | None = None, clock: Clock | None = None
) -> AsyncIterator[Verifier]:
    """A ready ``Verifier`` for the lifetime of the block (its HTTP session is closed after).

    Raises:
        ConfigError: trust anchors, policy or directory are missing or invalid.
    """
    clock = clock or SystemClock()
    store = load_trust_store(settings)
    pool = pdf_readers(settings)
    examiner = Examiner(store, clock, executor=pool)
    try:
        yield _verifier(settings, examiner, policy or policy_from_settings(settings), clock)
    finally:
        await examiner.aclose()
        await _shutdown(pool)


@dataclass(frozen=True)
class Sealing:
    """What outbound sealing needs, open for the lifetime of a command or of the service."""

    key: OrganisationKey
    documents: Sealer
    """Seals one PDF by its role (``gateway sign``)."""
    packages: PackageSealer
    """Seals a whole draft package and checks it as a recipient would (``gateway package seal``)."""
    verifier: Verifier
    """Our own verifier (shares the examiner): the self-check, and inbound verdicts in the service."""


@asynccontextmanager
async def open_sealing(settings: Settings, *, clock: Clock | None = None) -> AsyncIterator[Sealing]:
    """Open the organisation key (once), the sealer and the self-check verifier.

    Raises:
        ConfigError: key, TSA, seal image, trust anchors or policy are missing or invalid.
    """
    clock = clock or SystemClock()
    store = load_trust_store(settings)
    # The pinned store's intermediates complete a key file or token that lacks its chain.
    intermediates = [x509.load_der_x509_certificate(c.dump()) for c in store.intermediates]
    key = open_organisation_key(settings.sign, intermediates=intermediates)
    pool = pdf_readers(settings)
    examiner = Examiner(store, clock, executor=pool)
    policy = policy_from_settings(settings)
    sealer: Sealer | None = None
    try:
        sealer = Sealer(key, settings.sign, examiner, policy, clock, trust=store)
        verifier = _verifier(settings, examiner, policy, clock)
        packages = PackageSealer(
            sealer=sealer,
            key=key,
            verifier=verifier,
            identity=settings.identity,
            algorithm=settings.edxml.signature_algorithm,
        )
        yield Sealing(key, sealer, packages, verifier)
    finally:
        if sealer is not None:
            await sealer.aclose()
        await examiner.aclose()
        await _shutdown(pool)
        key.close()


def reload_policy(verifier: Verifier, settings: Settings, explicit: Path | None = None) -> Policy:
    """Load the policy file again and use it for verifications that start from now on.

    Verifications already running finish under the policy they started with; each verdict
    records the hash of its own. An invalid file changes nothing (the old policy stays).

    Returns:
        The policy now in force.

    Raises:
        ConfigError: the file is invalid (the previous policy stays in force).
    """
    policy = policy_from_settings(settings, explicit)
    verifier.replace_policy(policy)
    return policy
