"""The pipeline's world from settings: ``pipeline_context`` (for ``gateway serve`` and the CLI).

One composition for every process that runs pipeline steps, so that an admin's ``gateway queue
release`` delivers to the DMS exactly as the service does (same target, same envelope sender,
same timeouts) and the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gateway.app.compose import Sealing
from gateway.clock import Clock
from gateway.inbound.deliver import deliverer_from
from gateway.outbound.send import sender_from
from gateway.pipeline.context import PipelineContext
from gateway.settings import Settings
from gateway.store import Spool, Store

__all__ = ["STARTTLS", "pipeline_context"]

STARTTLS: Mapping[str, bool | None] = {"auto": None, "always": True, "never": False}
"""``[axis] starttls`` as ``SmtpSender`` takes it (``None``: when the relay offers it)."""


def pipeline_context(
    settings: Settings,
    *,
    config_dir: Path,
    store: Store,
    spool: Spool,
    sealing: Sealing,
    clock: Clock,
) -> PipelineContext:
    """Build the context every handler gets: the ports from ``[dms]``/``[axis]``, the rest as given.

    Nothing is connected here: the DMS and the relay are reached when mail is handed to them.

    Args:
        settings: the whole ``gateway.toml``.
        config_dir: the configuration file's directory (relative Maildir paths resolve against it).
        store: the open store.
        spool: the spool of original mails.
        sealing: the open key, sealer and verifier (``open_sealing``).
        clock: the time source.

    Returns:
        The context (with a fresh inline-verdict waiter).

    Raises:
        ConfigError: ``[dms] target`` or ``[axis] relay`` cannot be used.
    """
    hostname = settings.smtp.hostname
    timeout = settings.axis.timeout_seconds
    deliverer = deliverer_from(
        settings.dms, config_dir, mail_from=settings.dms.mail_from, local_hostname=hostname, timeout=timeout
    )
    sender = sender_from(
        settings.axis,
        config_dir,
        local_hostname=hostname,
        timeout=timeout,
        starttls=STARTTLS[settings.axis.starttls],
    )
    return PipelineContext(
        store=store,
        spool=spool,
        verifier=sealing.verifier,
        packages=sealing.packages,
        key=sealing.key,
        deliverer=deliverer,
        sender=sender,
        directory=sealing.verifier.directory,
        settings=settings,
        clock=clock,
    )
