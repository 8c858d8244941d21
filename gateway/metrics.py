"""Prometheus metrics of the gateway process (``GET /metrics``).

One :class:`Metrics` per process, built by the composition layer and handed to whoever observes
(the pipeline through ``PipelineContext.metrics``, the web app through ``WebDeps.metrics``): no
module-level registry (HOUSE.md rule 9), so every test has its own counters.

What is measured, and where:

* ``gateway_messages_total{direction,verdict}`` and ``gateway_findings_total{code}``: each
  verdict the pipeline records (``in``: accepted / refused / deferred, as stored; ``out``: a
  draft sealed, which passed our self-check, is ``accepted``, a draft that never will be is
  ``refused``);
* ``gateway_verification_seconds`` and ``gateway_sealing_seconds``: latency histograms around
  ``verify_package`` and ``seal_package`` (``with metrics.sealing_seconds.time(): ...``);
* ``gateway_tsa_errors_total`` and ``gateway_ocsp_errors_total``: failed attempts, read at scrape
  time from the TSA client's and the revocation fetchers' own counters (``watch``);
* ``gateway_queue_depth{kind,state}``: work items per kind and state, counted in the receipt log
  at scrape time (the caller passes the counts to :meth:`Metrics.render`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format."""

_VERIFY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
"""Verification: tens of milliseconds with cached revocation data, up to the fetch deadline."""
_SEAL_BUCKETS: Final = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0)
"""Sealing waits for the TSA, measured at 2-131 s for the VGCA's (spec §5)."""

ErrorCount = Callable[[], int]
"""Reads a monotonic error counter kept elsewhere (the TSA client's, the fetchers')."""


class _Watched(Collector):
    """Counters owned by other objects, read when Prometheus scrapes."""

    def __init__(self) -> None:
        self.tsa: list[ErrorCount] = []
        self.ocsp: list[ErrorCount] = []

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "gateway_tsa_errors",
            "Failed time-stamp attempts (unreachable, HTTP error, bad answer, deadline).",
            value=sum(read() for read in self.tsa),
        )
        yield CounterMetricFamily(
            "gateway_ocsp_errors",
            "Failed OCSP requests (unreachable, HTTP error, deadline, oversized answer).",
            value=sum(read() for read in self.ocsp),
        )


class Metrics:
    """The process's instruments and their registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages = Counter(
            "gateway_messages",
            "Verdicts recorded, by direction (inbound, outbound) and verdict.",
            ["direction", "verdict"],
            registry=self.registry,
        )
        self.findings = Counter(
            "gateway_findings", "Findings in recorded verdicts, by code.", ["code"], registry=self.registry
        )
        self.verification_seconds = Histogram(
            "gateway_verification_seconds",
            "Time to verify one package (parse, signatures, revocation, rules).",
            buckets=_VERIFY_BUCKETS,
            registry=self.registry,
        )
        self.sealing_seconds = Histogram(
            "gateway_sealing_seconds",
            "Time to seal one outbound package (PAdES seals with time stamps, envelope, self-check).",
            buckets=_SEAL_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "gateway_queue_depth",
            "Work items in the receipt log, by kind and state (counted at scrape time).",
            ["kind", "state"],
            registry=self.registry,
        )
        self._watched = _Watched()
        self.registry.register(self._watched)

    def verdict(self, direction: str, verdict: str, codes: Iterable[str] = ()) -> None:
        """Count one recorded verdict and its findings.

        Args:
            direction: ``in`` (a received package judged) or ``out`` (a draft sealed or refused).
            verdict: ``accepted``, ``refused`` or ``deferred``.
            codes: the stable codes of its findings (one count each).
        """
        self.messages.labels(direction=direction, verdict=verdict).inc()
        for code in codes:
            self.findings.labels(code=code).inc()

    def watch(self, *, tsa: ErrorCount | None = None, ocsp: ErrorCount | None = None) -> None:
        """Report error counters kept by the TSA client or the revocation fetchers."""
        if tsa is not None:
            self._watched.tsa.append(tsa)
        if ocsp is not None:
            self._watched.ocsp.append(ocsp)

    def render(self, queue_depth: Mapping[tuple[str, str], int]) -> bytes:
        """The exposition text, with the queue gauge set to ``queue_depth`` first.

        Args:
            queue_depth: ``(kind, state) -> count`` as counted now.

        Returns:
            UTF-8 text in the Prometheus format (``CONTENT_TYPE``).
        """
        # No await between clearing and rendering: two scrapes on the loop never see half a gauge.
        self.queue_depth.clear()
        for (kind, state), count in sorted(queue_depth.items()):
            self.queue_depth.labels(kind=kind, state=state).set(count)
        return generate_latest(self.registry)
