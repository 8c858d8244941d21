"""What every HTTP handler needs, built once by the composition layer (``gateway serve``, ``gateway web``).

``create_app(WebDeps(...))`` puts it on ``app.state.deps``; handlers reach it through the
``deps`` FastAPI dependency. Nothing here is a module-level global (HOUSE.md rule 9): two apps
in one test never share a store, a token list or a metrics registry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request

from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.store import Spool, Store
from gateway.verify.package import Verifier
from gateway.web.auth import TokenStore

__all__ = ["Health", "Probe", "WebDeps", "deps"]

Probe = Callable[[], Awaitable[Mapping[str, Any]]]
"""Extra facts for ``/healthz`` (the service adds its queue, policy and IMAP state)."""


@dataclass
class Health:
    """What ``GET /healthz`` reports besides the version."""

    started_at: datetime
    probe: Probe | None = None
    stopping: bool = False
    """Set at the start of a graceful shutdown: ``/healthz`` answers 503 so balancers stop sending."""


@dataclass
class WebDeps:
    """The long-lived parts of the HTTP surfaces (one per app)."""

    store: Store
    """The receipt log (opened read-only by ``gateway web``)."""
    spool: Spool
    """Original mails by SHA-256 (downloads, evidence)."""
    settings: Settings
    config_dir: Path
    """The configuration file's directory (relative paths resolve against it)."""
    tokens: TokenStore
    verifier: Verifier | None
    """Judges pre-flight uploads; ``None``: ``POST /preflight`` answers 503."""
    clock: Clock
    metrics: Metrics = field(default_factory=Metrics)
    health: Health | None = None
    """``None``: ``create_app`` starts one at the clock's now."""


def deps(request: Request) -> WebDeps:
    """FastAPI dependency: the app's ``WebDeps``."""
    found: WebDeps = request.app.state.deps
    return found
