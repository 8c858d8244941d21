"""Composition: builds everything from settings; the only ``asyncio.run`` (HOUSE.md module map).

``open_verifier`` and ``open_sealing`` serve the one-shot commands; ``serve`` runs the mail
gateway (``gateway serve``).
"""

from gateway.app.compose import (
    Sealing,
    load_trust_store,
    open_sealing,
    open_verifier,
    policy_from_settings,
    reload_policy,
    run,
)
from gateway.app.service import HANDLERS, Running, serve

__all__ = [
    "HANDLERS",
    "Running",
    "Sealing",
    "load_trust_store",
    "open_sealing",
    "open_verifier",
    "policy_from_settings",
    "reload_policy",
    "run",
    "serve",
]
