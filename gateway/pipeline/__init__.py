"""Orchestration: receive (verify, decide, deliver or refuse), send (seal, relay), the scheduler.

Reaches mail and the DMS only through the ports of ``gateway.pipeline.ports``. See
docs/design/mail-gateway.md.
"""

__all__: list[str] = []
