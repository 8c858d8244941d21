"""What every pipeline step needs, built once by ``gateway.app`` and handed to each handler.

``PipelineContext`` is the pipeline's whole world: the store and spool (durable state), the
verifier and the sealer (judgement and sealing), our organisation key (status packages), the
two ports (``Deliverer`` to the DMS, ``Sender`` to mail servers), the agency directory, the
settings, the clock and the inline-verdict waiter. Handlers receive it explicitly: no
module-level globals (HOUSE.md rule 9), so a unit test builds one from twins and the service
builds one from real parts.

The small helpers here are shared by the receiving and the sending halves: the retry delay
(``backoff``), who we are in a status package (``our_organization``) and the idempotency key
of a delivery to the DMS (``delivery_key``, also used by ``gateway queue release``).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from gateway.clock import Clock
from gateway.edxml.model import Organization
from gateway.errors import ConfigError
from gateway.metrics import Metrics
from gateway.pipeline.ports import Deliverer, Sender
from gateway.pipeline.waiter import VerdictWaiter
from gateway.settings import IdentitySettings, QueueSettings, Settings
from gateway.sign.keys import OrganisationKey
from gateway.sign.package import PackageSealer
from gateway.verify.directory import Directory
from gateway.verify.package import Verifier

if TYPE_CHECKING:  # the store is a leaf below us; imported for types only to keep start-up light
    from gateway.store import MessageView, Spool, Store

__all__ = [
    "Handler",
    "PipelineContext",
    "backoff",
    "delivery_key",
    "our_organization",
]

# Jitter spreads retries of many items that failed together (an axis outage) so they do not
# all come back in the same second; +-10 % keeps the schedule predictable for operators.
_JITTER = 0.1


@dataclass(frozen=True, kw_only=True)
class PipelineContext:
    """The long-lived parts every handler uses (one per process).

    The fields never change after start-up; what changes (the policy on SIGHUP) changes
    inside ``verifier`` itself (``Verifier.replace_policy``).
    """

    store: Store
    """Work items, verdicts, the journal (``gateway.store.Store``)."""
    spool: Spool
    """Original mails by SHA-256 (``gateway.store.Spool``)."""
    verifier: Verifier
    """Judges inbound packages (policy, trust store, examiner, identity, directory)."""
    packages: PackageSealer
    """Seals drafts from the DMS (the sending half)."""
    key: OrganisationKey
    """Our organisation key: signs the envelopes of the status packages we send (01, 02)."""
    deliverer: Deliverer
    """To the DMS."""
    sender: Sender
    """To the axis, to senders, to the DMS's notice address."""
    directory: Directory
    """OrganId -> agency (its mail addresses address our status packages)."""
    settings: Settings
    clock: Clock
    waiter: VerdictWaiter = field(default_factory=VerdictWaiter)
    """Inline verdicts for the SMTP edge (resolved by ``process_inbound``)."""
    metrics: Metrics = field(default_factory=Metrics)
    """Verdict counters and latency histograms (``/metrics``)."""


Handler = Callable[["MessageView", PipelineContext], Awaitable[None]]
"""A work-item handler: ``process_inbound``, ``process_submission``, ``process_send``, ``process_notice``.

Contract with the scheduler: the item arrives ``active``; the handler moves it on (terminal,
``deferred`` or ``hold``) through the store before returning. Returning with the item still
``active`` or raising is a bug the scheduler answers with ``hold`` (HOUSE.md rule 13).
"""


def backoff(attempts: int, queue: QueueSettings, *, rng: random.Random | None = None) -> timedelta:
    """How long to wait before the next attempt: exponential, capped, with a little jitter.

    ``retry_initial_seconds`` after the first failed attempt, doubling after each one, never
    more than ``retry_max_seconds`` (jitter included) and never less than one second.

    Args:
        attempts: how many attempts have failed so far (1 after the first failure; 0 is read as 1).
        queue: the ``[queue]`` settings.
        rng: the random source (tests pass a seeded one).

    Returns:
        The delay.
    """
    initial = max(queue.retry_initial_seconds, 1.0)
    ceiling = max(queue.retry_max_seconds, initial)
    exponent = min(max(attempts, 1) - 1, 62)  # 2**62 s is past any ceiling; avoids float overflow
    delay = min(initial * 2.0**exponent, ceiling)
    spread = (rng or random).uniform(1.0 - _JITTER, 1.0 + _JITTER)
    return timedelta(seconds=max(1.0, min(delay * spread, ceiling)))


def our_organization(identity: IdentitySettings) -> Organization:
    """Our organisation as the ``From`` of the status packages we send.

    The first configured OrganId is ours on the axis; the other ones are aliases we accept
    packages for.

    Args:
        identity: the ``[identity]`` settings.

    Returns:
        The organisation with every contact detail that is configured.

    Raises:
        ConfigError: no OrganId is configured (a status package needs one).
    """
    if not identity.organ_ids:
        raise ConfigError(
            "no OrganId configured: status packages cannot be sent",
            hint='set [identity] organ_ids = ["000.00.01.H53"]',
        )
    return Organization(
        organ_id=identity.organ_ids[0],
        organization_in_charge=identity.organization_in_charge,
        organ_name=identity.organ_name,
        organ_add=identity.address,
        email=identity.email,
        telephone=identity.telephone,
        fax=identity.fax,
        website=identity.website,
    )


def delivery_key(item_id: int, sha256: str) -> str:
    """The idempotency key of a delivery to the DMS: ``"<item id>-<sha256 prefix>"``.

    The Maildir deliverer writes ``new/<key>`` once and ignores a replay; SMTP/LMTP deliverers
    send it as ``X-Gateway-Id`` for the DMS to deduplicate. The same key for the same item
    whoever delivers it (the pipeline, or ``gateway queue release``).
    """
    return f"{item_id}-{sha256[:16]}"
