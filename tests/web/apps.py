"""The HTTP app over a receipt log, for the API, auth, pre-flight and metrics tests (httpx over ASGI).

``served(db, spool)`` opens the receipt log read-only (``migrate=False``, as ``gateway web`` does),
builds ``WebDeps`` with the tokens of :data:`TOKENS`, and yields an ``httpx.AsyncClient`` on the
real ``create_app`` plus the deps. ``verifier=True`` adds a verifier on the settings' trust
(pre-flight, replay). ``copy_log`` copies a stopped gateway's database and spool, so a test that
must prove "nothing written" has a log no other test touches.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx

from gateway.app import open_verifier
from gateway.clock import Clock, SystemClock
from gateway.pipeline.mails import find_package
from gateway.settings import HttpSettings, Settings
from gateway.store import Spool, Store
from gateway.web.app import create_app
from gateway.web.auth import TokenInfo, TokenStore, hash_token
from gateway.web.deps import WebDeps

__all__ = ["TOKENS", "bearer", "copy_log", "package_of", "served", "token_store"]

TOKENS = {
    "reader": ("read",),
    "sender": ("preflight",),
    "admin": ("admin",),
    "all": ("read", "preflight", "admin"),
}
"""Token name → scopes; each token's secret is :func:`secret` of its name."""


def secret(name: str) -> str:
    """The test token of ``name`` (43 characters like a real one; not random: tests name them)."""
    return f"{name}-".ljust(43, "x")


def bearer(name: str) -> dict[str, str]:
    """The ``Authorization`` header of the test token ``name``."""
    return {"Authorization": f"Bearer {secret(name)}"}


def token_store() -> TokenStore:
    """Every token of :data:`TOKENS`."""
    return TokenStore(tuple(TokenInfo(n, frozenset(s), hash_token(secret(n))) for n, s in TOKENS.items()))


def copy_log(config: Path, into: Path) -> tuple[Path, Path]:
    """Copy a stopped gateway's ``gateway.db`` and ``spool/`` (``tests.service.write_config`` layout)."""
    into.mkdir(parents=True, exist_ok=True)
    shutil.copy2(config.parent / "gateway.db", into / "gateway.db")
    shutil.copytree(config.parent / "spool", into / "spool")
    return into / "gateway.db", into / "spool"


async def package_of(db: Path, spool: Path, id: int) -> bytes:
    """The edXML package the spooled original mail of work item ``id`` carries."""
    store = await Store.open(f"sqlite+aiosqlite:///{db}", clock=SystemClock(), migrate=False)
    try:
        item = await store.get(id)
    finally:
        await store.close()
    assert item is not None
    found = find_package(await Spool(spool).get(item.sha256))
    assert found.package is not None
    return found.package


@asynccontextmanager
async def served(
    db: Path,
    spool: Path,
    *,
    settings: Settings | None = None,
    verifier: bool = False,
    clock: Clock | None = None,
    metrics_public: bool = False,
    migrate: bool = False,
) -> AsyncIterator[tuple[httpx.AsyncClient, WebDeps]]:
    """The app over ``db``/``spool``; yields an httpx client on it and its deps."""
    settings = settings or Settings()
    settings = dataclasses.replace(settings, http=HttpSettings(metrics_public=metrics_public))
    clock = clock or SystemClock()
    async with AsyncExitStack() as stack:
        store = await Store.open(f"sqlite+aiosqlite:///{db}", clock=clock, migrate=migrate)
        stack.push_async_callback(store.close)
        judge = await stack.enter_async_context(open_verifier(settings, clock=clock)) if verifier else None
        deps = WebDeps(
            store=store,
            spool=Spool(spool),
            settings=settings,
            config_dir=db.parent,
            tokens=token_store(),
            verifier=judge,
            clock=clock,
        )
        transport = httpx.ASGITransport(app=create_app(deps))
        client = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://gateway.test"))
        yield client, deps
