"""The database engine: URL handling, SQLite pragmas, write transactions, error translation.

SQLite (the embedded default) is opened so that it survives crashes and concurrent writers:

* every connection runs ``journal_mode=WAL`` (readers never block the writer),
  ``synchronous=FULL`` (a commit is on disk when it returns: the 250 after ``record_intake``
  is a promise), ``busy_timeout=5000`` (a second writer waits instead of failing at once) and
  ``foreign_keys=ON``;
* the driver's own implicit ``BEGIN`` is switched off and we emit ours: ``BEGIN IMMEDIATE``
  for write transactions, so two writers never both read the same state (the claim, the
  chain head) and then race to upgrade a read lock (which SQLite answers with SQLITE_BUSY
  at once, ignoring the timeout); a plain deferred ``BEGIN`` for readers, which in WAL mode
  never wait;
* an in-memory database (tests) gets one shared connection.

PostgreSQL (several instances on one database) needs none of this: ``READ COMMITTED`` plus
the row locks of the write transaction (``session.py``: the chain head first, ``FOR UPDATE``;
then the items, the claim with ``SKIP LOCKED``). Its connections come from a small pool
(checked before use: a restarted server costs one failed ping, not a failed write); each
session runs in UTC, names itself ``gateway`` in ``pg_stat_activity``, is cut by the server
when it sits idle inside a transaction for a minute (a stopped process must not hold the chain
head forever) and is probed by TCP keepalives (a vanished host's session ends within ~90 s).
Only ``postgresql+asyncpg`` is accepted: the store is async throughout. No password belongs in
the URL: asyncpg reads ``PGPASSFILE`` / ``~/.pgpass`` like libpq.

Errors: every driver error becomes a ``TransientError`` (try again later), a full disk
``StorageFull``; at start, a database that refuses us or does not exist is a ``ConfigError``
(``open_error``); deadlocks and serialization failures are worth running again
(``retryable``: the writer does, see ``session.py``).
"""

from __future__ import annotations

import errno
import sqlite3
import time
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from gateway.errors import ConfigError, GatewayError, TransientError
from gateway.store.records import StorageFull

__all__ = [
    "BEGIN_OPTION",
    "SQLITE_PRAGMAS",
    "create_engine",
    "is_memory",
    "open_error",
    "prepare_sqlite_file",
    "resolve_url",
    "retryable",
    "sqlite_path",
    "translate_db_error",
]

SQLITE_PRAGMAS: Final = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
)
_WAL_SWITCH_TRIES: Final = 500
"""How often a connection tries to switch a fresh database to WAL while another holds it (10 ms apart)."""
BEGIN_OPTION: Final = "gateway_begin"
"""Execution option naming the SQLite ``BEGIN`` mode of a transaction (``IMMEDIATE`` for writes)."""
_BEGIN_MODES: Final = ("DEFERRED", "IMMEDIATE")
_DRIVERS: Final = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
"""The one async driver the store uses for each database."""
_URL_HINT: Final = "use sqlite+aiosqlite:///path/gateway.db or postgresql+asyncpg://user@host:5432/gateway"
POSTGRES_POOL: Final = {"pool_size": 5, "max_overflow": 10, "pool_timeout": 30, "pool_pre_ping": True}
"""Connections per process: the writer, the lease keeper, readers (web pages, CLI, verify-chain)."""
POSTGRES_SESSION: Final = {
    "application_name": "gateway",
    "TimeZone": "UTC",
    "idle_in_transaction_session_timeout": "60000",
    # A vanished client host (power cut) is noticed in about 90 s, not the kernel's 2 hours:
    # its session ends and gives back what it held (the chain head, its instance name).
    "tcp_keepalives_idle": "60",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "3",
}
_CONNECT_SECONDS: Final = 10


def _parse(url: str | URL) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"[store] url is not a database URL ({exc})") from None


def is_memory(url: str | URL) -> bool:
    """Whether ``url`` names an in-memory SQLite database."""
    parsed = _parse(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL, or ``None`` (another database, or in memory)."""
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite" or is_memory(parsed):
        return None
    return Path(str(parsed.database))


def resolve_url(url: str, config_dir: Path) -> str:
    """Make a relative SQLite path in ``url`` relative to the configuration file's directory.

    ``sqlite+aiosqlite:///var/gateway.db`` with ``config_dir=/etc/gateway`` becomes
    ``sqlite+aiosqlite:////etc/gateway/var/gateway.db`` (like Postfix's ``main.cf`` paths).
    Other URLs come back unchanged. The composition layer calls this once; ``Store.open``
    takes the URL as given.

    Raises:
        ConfigError: ``url`` is not a database URL.
    """
    parsed = _parse(url)
    path = sqlite_path(parsed)
    if path is None or path.is_absolute():
        return url
    resolved = parsed.set(database=str((config_dir / path).absolute()))
    return resolved.render_as_string(hide_password=False)


def prepare_sqlite_file(url: str | URL, *, create: bool) -> None:
    """Check (or make) the place of a SQLite database file before connecting.

    SQLite would otherwise fail with a bare "unable to open database file", or, worse, a
    read-only tool would silently create an empty database where the real one was expected.

    Args:
        url: the database URL (other databases and in-memory SQLite are left alone).
        create: make the missing parent directories (``gateway serve``, ``gateway db upgrade``);
            ``False``: the file must exist (operator tools that only read).

    Raises:
        ConfigError: ``create`` is false and there is no database file.
        TransientError: the directory cannot be made.
    """
    path = sqlite_path(url)
    if path is None:
        return
    if not create:
        if not path.is_file():
            raise ConfigError(f"no receipt log at {path}", hint="check [store] url, or run `gateway db upgrade`")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TransientError(f"cannot create the database directory {path.parent}: {exc.strerror}") from exc


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # No implicit BEGIN from the driver: `_on_begin` emits ours (see the module docstring).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            _execute_pragma(cursor, pragma)
        cursor.execute("PRAGMA journal_mode")
        mode = str(cursor.fetchone()[0]).lower()
    finally:
        cursor.close()
    if mode not in ("wal", "memory"):
        # WAL needs shared memory on a local file system; on NFS it silently stays "delete".
        raise TransientError(f"SQLite refused WAL mode (journal_mode={mode}); put the database on a local disk")


def _execute_pragma(cursor: Any, pragma: str) -> None:
    """Run one pragma; retry the switch to WAL while another connection holds the file.

    Switching a database's journal mode takes an exclusive lock, and SQLite answers a busy
    file at once there, without the busy handler: when several processes (or pooled connections)
    open a fresh database together, all but one would fail with "database is locked". The
    switch only happens on a database not yet in WAL mode (WAL is stored in the file), so the
    wait blocks the loop only at a fresh database's first opening.
    """
    tries = _WAL_SWITCH_TRIES if pragma.lower().startswith("pragma journal_mode=") else 1
    for attempt in range(1, tries + 1):
        try:
            cursor.execute(pragma)
            return
        except sqlite3.OperationalError as exc:
            if attempt == tries or "locked" not in str(exc):
                raise
            time.sleep(0.01)


def _on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
    if mode not in _BEGIN_MODES:
        raise ValueError(f"unknown BEGIN mode {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _engine_options(parsed: URL) -> dict[str, Any]:
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if _DRIVERS.get(backend) != driver:
        where = parsed.render_as_string()
        raise ConfigError(
            f"[store] url {where!r} cannot be used: no store driver for {backend}+{driver}", hint=_URL_HINT
        )
    if is_memory(parsed):
        # One connection, or every checkout would see a fresh empty database.
        return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    if backend == "postgresql":
        if not parsed.database:
            raise ConfigError(f"[store] url {parsed.render_as_string()!r} names no database", hint=_URL_HINT)
        connect = {"timeout": _CONNECT_SECONDS, "server_settings": dict(POSTGRES_SESSION)}
        return {**POSTGRES_POOL, "connect_args": connect}
    return {}


def create_engine(url: str | URL) -> AsyncEngine:
    """Create the async engine for ``url`` with the settings described in the module docstring.

    Raises:
        ConfigError: not a database URL, or not one of the two async drivers.
    """
    parsed = _parse(url)
    options = _engine_options(parsed)
    try:
        engine = create_async_engine(parsed, **options)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"[store] url {parsed.render_as_string()!r} cannot be used ({exc})", hint=_URL_HINT) from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_connect)
        event.listen(engine.sync_engine, "begin", _on_begin)
    return engine


_FULL_ERRNOS: Final = (errno.ENOSPC, errno.EDQUOT)
_SQLITE_FULL: Final = 13
_SQLITE_FULL_TEXT: Final = "database or disk is full"
"""SQLITE_FULL's message, for a driver that drops the code (not any text with "full" in it)."""
_FULL_STATES: Final = ("53100",)
"""PostgreSQL's disk_full (``asyncpg.exceptions.DiskFullError``)."""
_RETRY_STATES: Final = ("40001", "40P01")
"""PostgreSQL's serialization failure and deadlock: the transaction was rolled back, run it again."""
_REFUSED_STATES: Final = ("28000", "28P01", "3D000", "42501")
"""Bad role or password, no such database, no privilege: configuration, not a passing outage."""


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return str(code) if code else None


def retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is a deadlock or serialization failure (PostgreSQL): the same transaction may succeed."""
    return isinstance(exc, DBAPIError) and _sqlstate(exc) in _RETRY_STATES


def translate_db_error(exc: DBAPIError) -> TransientError:
    """Turn a driver error into what the edges understand (HOUSE.md rule 6).

    Database trouble (locked past the timeout, disk full, I/O error, connection lost, a
    PostgreSQL server restarting) means "try again later": the SMTP edge answers 451, or 452
    for a full disk (SQLite's SQLITE_FULL, ENOSPC/EDQUOT, PostgreSQL's 53100 disk_full). A
    PostgreSQL server out of memory (53200) or out of connections (53300) is a plain 451: it
    passes when the load does, and 452 says "insufficient system storage".
    """
    text = str(exc.orig) if exc.orig is not None else str(exc)
    orig = exc.orig
    full = (
        getattr(orig, "sqlite_errorcode", None) == _SQLITE_FULL
        or _SQLITE_FULL_TEXT in text.lower()
        or getattr(orig, "errno", None) in _FULL_ERRNOS
        or _sqlstate(exc) in _FULL_STATES
    )
    if full:
        return StorageFull(f"the database is full: {text}")
    return TransientError(f"database unavailable: {text}")


def open_error(exc: BaseException, url: str | URL) -> GatewayError | None:
    """What opening the store at ``url`` should raise for ``exc`` (``None``: not a database error).

    A server that refuses our role or password, or has no such database, is a configuration
    error (``gateway serve`` exits 2 naming ``[store] url``); one that cannot be reached is
    transient (a database starting after the gateway: systemd restarts us).
    """
    where = _parse(url).render_as_string(hide_password=True)
    if isinstance(exc, DBAPIError):
        if _sqlstate(exc) in _REFUSED_STATES:
            text = str(exc.orig) if exc.orig is not None else str(exc)
            return ConfigError(
                f"[store] url {where!r}: the database refused us ({text})",
                hint="create the role and the database (README: several instances), or fix the URL or ~/.pgpass",
            )
        return translate_db_error(exc)
    if isinstance(exc, OSError):
        return TransientError(f"cannot reach the database at {where}: {exc}")
    return None
