"""Inline verdicts: let the SMTP edge wait a moment for the verdict before answering DATA.

With ``[smtp] inline_verdict_seconds > 0`` the edge, having spooled the mail and committed its
row (the Postfix promise comes first), awaits ``VerdictWaiter.wait(item_id, timeout)`` (inject
the bound method: it is the edge's ``verdict_waiter(item_id, timeout)``). When
``process_inbound`` records that item's verdict in this process within the timeout, the edge
gets an ``InlineVerdict``; when ``refused`` is true it answers ``550 5.7.1 <code>: <reason>``
(the first decisive finding's code and English message; the edge folds it to ASCII, HOUSE.md
rule 6: only edges speak SMTP). ``None`` (no verdict in time), ``accepted`` or ``deferred``:
the edge answers 250 as usual and the verdict comes later, by notice.

Whatever the outcome, the item is already durable and goes on (notice, log) exactly as if
nobody had waited. Invariants: every future made by ``wait`` is removed when ``wait`` returns,
times out or is cancelled (no leak); a verdict resolved a moment *before* the edge started
waiting is still seen (a short, bounded memory of recent verdicts), because a worker can
decide faster than the edge gets to ``wait``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from gateway.verify.report import Verdict

__all__ = ["InlineVerdict", "VerdictWaiter"]


@dataclass(frozen=True)
class InlineVerdict:
    """What ``process_inbound`` decided about one item, as the SMTP edge needs it.

    Fits the edge's ``gateway.inbound.smtp.InlineVerdict`` protocol (``refused``, ``code``,
    ``reason``) without either side importing the other.
    """

    verdict: Verdict
    """``accepted``, ``refused`` or ``deferred``."""
    code: str = ""
    """For ``refused``/``deferred``: the first decisive finding's code (e.g. ``cert-revoked``)."""
    reason: str = ""
    """Its English message (the Vietnamese one goes to the sender in the status 02)."""

    @property
    def refused(self) -> bool:
        """Whether the edge should answer 550 (anything else answers 250)."""
        return self.verdict is Verdict.REFUSED


class VerdictWaiter:
    """Futures keyed by item id, resolved when the verdict is recorded (one per process).

    Only verdicts decided *in this process* are seen; with several processes (PostgreSQL,
    issue 7) the waiting edge simply times out and answers 250.
    """

    def __init__(self, *, remember: int = 256) -> None:
        """Args:
        remember: how many recent verdicts to keep for a ``wait`` that starts late.
        """
        self._waiting: dict[int, set[asyncio.Future[InlineVerdict]]] = {}
        self._recent: OrderedDict[int, InlineVerdict] = OrderedDict()
        self._remember = remember

    async def wait(self, item_id: int, timeout: float) -> InlineVerdict | None:  # noqa: ASYNC109 (the edge's contract)
        """Wait up to ``timeout`` seconds for the verdict on ``item_id``.

        Args:
            item_id: the work item the edge just recorded.
            timeout: seconds (``inline_verdict_seconds``); 0 or less returns at once.

        Returns:
            The verdict, or ``None`` when none came in time.
        """
        known = self._recent.get(item_id)
        if known is not None or timeout <= 0:
            return known
        future: asyncio.Future[InlineVerdict] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(item_id, set()).add(future)
        try:
            # asyncio.wait never cancels the future: resolving a future nobody awaits is harmless.
            done, _ = await asyncio.wait({future}, timeout=timeout)
            return future.result() if done else None
        finally:
            futures = self._waiting.get(item_id)
            if futures is not None:
                futures.discard(future)
                if not futures:
                    del self._waiting[item_id]

    def resolve(self, item_id: int, outcome: InlineVerdict) -> None:
        """Hand the verdict on ``item_id`` to whoever waits for it (called by ``process_inbound``).

        Args:
            item_id: the work item.
            outcome: the verdict recorded for it.
        """
        self._recent[item_id] = outcome
        self._recent.move_to_end(item_id)
        while len(self._recent) > self._remember:
            self._recent.popitem(last=False)
        for future in self._waiting.get(item_id, ()):
            if not future.done():
                future.set_result(outcome)

    @property
    def pending(self) -> int:
        """How many ``wait`` calls are in progress (for tests and health checks)."""
        return sum(len(futures) for futures in self._waiting.values())
