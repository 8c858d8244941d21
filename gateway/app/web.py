"""Composing the HTTP surfaces: inside ``gateway serve``, or alone (``gateway web``).

Both run the same ``create_app`` over a ``WebDeps``. Inside the service the app shares the
service's store, spool, verifier (pre-flight judges under the policy in force) and metrics (the
pipeline's counters). Alone, it opens the receipt log without migrating it (it never writes),
a verifier of its own when trust anchors are configured (else pre-flight answers 503), and
counts only the queue depth: the pipeline's counters live in the ``gateway serve`` process, so
Prometheus scrapes that one.

SIGHUP reloads the tokens file (and, alone, the policy): an invalid file changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from gateway.app.compose import Sealing, open_verifier, reload_policy
from gateway.app.signals import signals
from gateway.clock import Clock, SystemClock
from gateway.errors import GatewayError
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.smtpserver import parse_listen
from gateway.store import Spool, Store, resolve_url
from gateway.verify.package import Verifier
from gateway.verify.pdf import Examiner
from gateway.web.app import create_app
from gateway.web.auth import TokenStore
from gateway.web.deps import WebDeps
from gateway.web.server import WebServer

__all__ = ["load_tokens", "serve_web", "watch_errors"]

log = logging.getLogger(__name__)


def load_tokens(settings: Settings) -> TokenStore:
    """The tokens of ``[http] tokens``; none (only ``/healthz`` answers) when it is unset.

    Raises:
        ConfigError: the file is missing or malformed (names the file and line).
    """
    if settings.http.tokens is None:
        log.warning("[http] tokens is not set: the API, pre-flight, /metrics and the pages refuse every request")
        return TokenStore()
    return TokenStore.load(settings.http.tokens)


def watch_errors(metrics: Metrics, verifier: Verifier, sealing: Sealing | None = None) -> None:
    """Let ``/metrics`` read the OCSP fetchers' and the TSA client's error counters."""
    examiner = verifier.examiner
    if isinstance(examiner, Examiner):
        fetchers = examiner.fetchers
        metrics.watch(ocsp=lambda: fetchers.stats.errors.get("ocsp", 0))
    if sealing is not None:
        tsa = sealing.documents.tsa
        metrics.watch(tsa=lambda: tsa.stats.failures)


def reloader(tokens: TokenStore, verifier: Verifier | None, settings: Settings) -> Callable[[], None]:
    """The standalone server's SIGHUP: the tokens file and the policy, each all or nothing."""

    def reload() -> None:
        try:
            tokens.reload()
            if verifier is not None:
                reload_policy(verifier, settings)
        except GatewayError as exc:
            log.error("SIGHUP: reload refused, the previous tokens and policy stay in force: %s", exc)
            return
        log.warning("SIGHUP: %d token(s) in force", len(tokens.tokens))

    return reload


@contextlib.asynccontextmanager
async def _maybe_verifier(settings: Settings, clock: Clock) -> AsyncIterator[Verifier | None]:
    if not settings.trust.anchors:
        log.warning("no [trust] anchors: POST /preflight answers 503 on this server")
        yield None
        return
    async with open_verifier(settings, clock=clock) as verifier:
        yield verifier


async def serve_web(
    settings: Settings,
    *,
    config_dir: Path,
    listen: str | None = None,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    ready: Callable[[tuple[str, int]], None] | None = None,
    grace: float = 10.0,
) -> None:
    """Serve the HTTP app alone until SIGTERM/SIGINT or ``stop`` (``gateway web``).

    Args:
        settings: the whole ``gateway.toml``.
        config_dir: the configuration file's directory.
        listen: ``host:port`` instead of ``[http] listen``.
        clock: the time source (default: the system clock).
        stop: set it to shut down (signals set it too).
        ready: called with the bound address once the server accepts connections.
        grace: seconds requests in flight get at shutdown.

    Raises:
        ConfigError: no receipt log, a schema not at head, a bad tokens file, address or trust.
    """
    clock = clock or SystemClock()
    stop = stop or asyncio.Event()
    host, port = parse_listen(listen or settings.http.listen, key="--listen" if listen else "[http] listen")
    tokens = load_tokens(settings)
    store = await Store.open(resolve_url(settings.store.url, config_dir), clock=clock, migrate=False)
    try:
        async with _maybe_verifier(settings, clock) as verifier:
            metrics = Metrics()
            if verifier is not None:
                watch_errors(metrics, verifier)
            web = WebDeps(
                store=store,
                spool=Spool(settings.store.spool),
                settings=settings,
                config_dir=config_dir,
                tokens=tokens,
                verifier=verifier,
                clock=clock,
                metrics=metrics,
            )
            server = WebServer(create_app(web), host, port, grace=grace)
            await server.start()
            try:
                log.warning("gateway web serving on http://%s:%d (read-only)", *server.address)
                if ready is not None:
                    ready(server.address)
                async with signals(stop, reloader(tokens, verifier, settings)):
                    await stop.wait()
            finally:
                if web.health is not None:
                    web.health.stopping = True
                await server.stop()
    finally:
        await store.close()
