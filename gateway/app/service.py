"""``gateway serve``: the whole mail gateway in one process, on one event loop.

Start-up order (each step can refuse with a ``ConfigError`` naming the setting; nothing is
listening until every part is ready, so a half-configured gateway never answers 250):

1. the development PKI's OCSP, CRLs and TSA, when ``[dev] pki`` names a bundle (``make run``);
2. the receipt log (migrated to the current schema) and the spool (whose temp files left by a
   crash are swept at start and every few hours: ``gateway.store.spoolsweep``);
3. the organisation key, the sealer and the verifier (``open_sealing``), the DMS deliverer and
   the axis sender;
4. the scheduler: it first recovers what a crash left ``active``, then its workers claim;
5. the listeners: inbound SMTP, submission SMTP, HTTP (``gateway.web``: ``/healthz``, ``/metrics``,
   the JSON API, pre-flight, the pages); the IMAP poller when configured.

Shutdown (SIGTERM, SIGINT, or ``stop`` set by the caller) runs the other way: ``/healthz``
answers 503 at once, the listeners stop accepting and let DATA in flight commit, the poller
finishes the mail in hand, the workers get ``grace`` seconds to finish (what they do not finish
stays ``active`` and is recovered at the next start), then the store and the key close.

SIGHUP reloads the rejection policy (``[verify] policy``), the submission users file and the
HTTP tokens file (``[http] tokens``). An invalid file changes nothing: the old one stays in force
and the error is logged.

Every policy the gateway judges under is first kept in the spool by its SHA-256 (its canonical
text, ``Policy.canonical``), at start and before a reloaded one takes effect: each verdict's
``policy_sha256`` can then be looked up (``gateway evidence`` puts the text in the bundle).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.app.compose import open_sealing, policy_from_settings
from gateway.app.context import pipeline_context
from gateway.app.signals import signals
from gateway.app.web import load_tokens, watch_errors
from gateway.clock import Clock, SystemClock
from gateway.devpki.pki import DevPKI
from gateway.devpki.server import PKIServer, bind_listener, serve_pki
from gateway.errors import ConfigError, GatewayError
from gateway.inbound.imap import ImapPoller
from gateway.inbound.intake import Intake
from gateway.inbound.smtp import InboundSmtp
from gateway.outbound.submit import SubmissionSmtp
from gateway.pipeline.context import Handler
from gateway.pipeline.receive import process_inbound
from gateway.pipeline.scheduler import Scheduler
from gateway.pipeline.send import process_notice, process_send
from gateway.pipeline.submission import process_submission
from gateway.settings import ImapSettings, Settings
from gateway.sign.keys import read_secret
from gateway.smtpserver import parse_listen
from gateway.store import Spool, Store, resolve_url
from gateway.store.lease import default_instance
from gateway.store.spoolsweep import keep_swept
from gateway.verify.policy import Policy
from gateway.web.app import create_app
from gateway.web.deps import Health, WebDeps
from gateway.web.server import WebServer

__all__ = ["HANDLERS", "Running", "serve"]

log = logging.getLogger(__name__)

HANDLERS: Mapping[str, Handler] = {
    "inbound": process_inbound,
    "submission": process_submission,
    "send": process_send,
    "notice": process_notice,
}
"""The handler of each kind of work item (``gateway.store.KINDS``)."""


@dataclass(frozen=True)
class Running:
    """Where the started service listens (handed to ``ready``; ports may have been 0 in the settings)."""

    smtp: tuple[str, int]
    submission: tuple[str, int]
    http: tuple[str, int]
    pki: str | None
    """The development PKI's base URL when ``[dev] pki`` is served, else None."""
    imap: str | None
    """``user@host:port/mailbox`` when the IMAP poller runs, else None."""


@contextlib.contextmanager
def _dev_pki(directory: Path) -> Iterator[PKIServer]:
    """Serve a development PKI bundle on the address its certificates name (never in production)."""
    pki = DevPKI.load(directory)
    baked = urlsplit(pki.base_url)
    listener = bind_listener(baked.hostname or "127.0.0.1", baked.port or 80)
    with serve_pki(pki, listener, allow_time_override=False) as server:
        log.warning("serving the DEVELOPMENT PKI of %s at %s (test only)", directory, server.url)
        yield server


def _imap_poller(settings: ImapSettings, intake: Intake, clock: Clock) -> ImapPoller:
    if (settings.password_env is None) == (settings.password_file is None):
        raise ConfigError(
            "[imap] needs exactly one of password_env and password_file",
            hint='e.g. password_file = "/etc/gateway/imap.password" (mode 0600)',
        )
    password = read_secret(env=settings.password_env, file=settings.password_file).decode()
    context: ssl.SSLContext | None = None
    if settings.ca_file is not None:
        try:
            context = ssl.create_default_context(cafile=str(settings.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"[imap] ca_file cannot be used ({exc})", path=settings.ca_file) from None
    return ImapPoller(settings, intake, password=password, clock=clock, ssl_context=context)


async def _keep_policy(spool: Spool, policy: Policy) -> None:
    """Spool the policy's canonical text under its SHA-256 (the ``policy_sha256`` of its verdicts).

    Raises:
        TransientError: the spool cannot take it now.
    """
    await spool.put(policy.canonical.encode())


async def serve(
    settings: Settings,
    *,
    config_dir: Path,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    ready: Callable[[Running], None] | None = None,
    grace: float = 30.0,
) -> None:
    """Run the gateway until SIGTERM/SIGINT or until ``stop`` is set.

    Args:
        settings: the whole ``gateway.toml``.
        config_dir: the configuration file's directory (relative paths and URLs resolve against it).
        clock: the time source (tests pass a fixed one); default: the system clock.
        stop: set it to shut down gracefully (signals set it too).
        ready: called once everything listens, with the bound addresses.
        grace: seconds in-flight work gets to finish at shutdown.

    Raises:
        ConfigError: a part cannot be built from the settings (named in the message).
        OSError: a listener cannot bind its address.
        GatewayError: the scheduler could not recover the queue at start.
    """
    clock = clock or SystemClock()
    stop = stop or asyncio.Event()
    started_at = clock.now()
    async with AsyncExitStack() as stack:
        pki_url: str | None = None
        if settings.dev.pki is not None:
            pki_url = stack.enter_context(_dev_pki(settings.dev.pki)).url
        store = await Store.open(
            resolve_url(settings.store.url, config_dir),
            clock=clock,
            instance=settings.store.instance or default_instance(),
            lease_seconds=settings.store.lease_seconds,
        )
        stack.push_async_callback(store.close)
        spool = Spool(settings.store.spool)
        sealing = await stack.enter_async_context(open_sealing(settings, clock=clock))
        await _keep_policy(spool, sealing.verifier.policy)
        ctx = pipeline_context(settings, config_dir=config_dir, store=store, spool=spool, sealing=sealing, clock=clock)
        wake = asyncio.Event()
        intake = Intake(store, spool, wake=wake.set)
        inbound = InboundSmtp(settings.smtp, intake, verdict_waiter=ctx.waiter.wait)
        submission = SubmissionSmtp(settings.submission, intake)
        poller = None
        if settings.imap.host is not None:
            poller = _imap_poller(settings.imap, intake, clock)
        scheduler = Scheduler(ctx, HANDLERS, workers=settings.queue.workers, wake=wake)
        http_host, http_port = parse_listen(settings.http.listen, key="[http] listen")

        async def probe() -> dict[str, Any]:
            report: dict[str, Any] = {
                "policy_sha256": sealing.verifier.policy.sha256,
                "in_flight": len(scheduler.in_flight),
                "inline_waits": ctx.waiter.pending,
            }
            if poller is not None:
                status = poller.status
                report["imap"] = {
                    "state": status.state,
                    "connected": status.connected,
                    "accepted": status.accepted,
                    "reconnects": status.reconnects,
                    "last_error": status.last_error,
                }
            return report

        tokens = load_tokens(settings)
        watch_errors(ctx.metrics, sealing.verifier, sealing)
        web = WebDeps(
            store=store,
            spool=spool,
            settings=settings,
            config_dir=config_dir,
            tokens=tokens,
            verifier=sealing.verifier,
            clock=clock,
            metrics=ctx.metrics,
            health=Health(started_at=started_at, probe=probe),
        )
        http = WebServer(create_app(web), http_host, http_port, grace=grace)

        reloads: set[asyncio.Task[None]] = set()

        async def apply(policy: Policy) -> None:
            # Kept before it is used: no verdict names a policy whose text is not in the spool.
            try:
                await _keep_policy(spool, policy)
            except GatewayError as exc:
                log.error("SIGHUP: the policy cannot be kept in the spool; the previous one stays in force: %s", exc)
                return
            sealing.verifier.replace_policy(policy)
            log.warning("SIGHUP: policy %s now in force for new verifications", policy.sha256[:16])

        def reload() -> None:
            try:  # every file read first: nothing changes unless all of them are valid
                policy = policy_from_settings(settings)
                use_users = submission.staged_users()
                use_tokens = tokens.staged()
            except GatewayError as exc:
                log.error("SIGHUP: reload refused, the previous policy, users and tokens stay in force: %s", exc)
                return
            use_users()
            use_tokens()
            task = asyncio.get_running_loop().create_task(apply(policy), name="reload-policy")
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        workers = asyncio.create_task(scheduler.run(), name="scheduler")
        # Ages are measured on the clock that stamps mtimes (the system's), not the injected one.
        sweeper = asyncio.create_task(keep_swept(spool, SystemClock()), name="spool-sweep")
        tasks: list[asyncio.Task[None]] = [workers, sweeper]
        try:
            await inbound.start()
            await submission.start()
            await http.start()
            imap_name = None
            if poller is not None:
                tasks.append(asyncio.create_task(poller.run(), name="imap"))
                imap = settings.imap
                imap_name = f"{imap.user}@{imap.host}:{imap.port}/{imap.mailbox}"
            running = Running(inbound.address, submission.address, http.address, pki_url, imap_name)
            log.warning(
                "gateway serving as pid %d: smtp %s:%d, submission %s:%d, http %s:%d",
                os.getpid(),
                *running.smtp,
                *running.submission,
                *running.http,
            )
            if ready is not None:
                ready(running)
            async with signals(stop, reload):
                stopped = asyncio.create_task(stop.wait(), name="stop")
                done, _ = await asyncio.wait([stopped, workers], return_when=asyncio.FIRST_COMPLETED)
                if workers in done:
                    stopped.cancel()
                    workers.result()  # raises what ended the scheduler; else it ended without a stop
                    raise GatewayError("the scheduler stopped unexpectedly")
                log.warning("stopping: finishing work in flight (up to %g s)", grace)
        finally:
            if web.health is not None:
                web.health.stopping = True
            await asyncio.gather(inbound.stop(grace), submission.stop(grace), return_exceptions=True)
            if poller is not None:
                await poller.stop()
            await scheduler.stop(grace)
            sweeper.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await http.stop()
        log.warning("gateway stopped")
