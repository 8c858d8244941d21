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

PostgreSQL (issue 7) needs none of this: ``READ COMMITTED`` plus the row locks taken by the
claim (``FOR UPDATE SKIP LOCKED``) and by the chain append (``FOR UPDATE`` on the head row).
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from gateway.errors import ConfigError, TransientError
from gateway.store.records import StorageFull

__all__ = [
    "BEGIN_OPTION",
    "SQLITE_PRAGMAS",
    "create_engine",
    "is_memory",
    "prepare_sqlite_file",
    "resolve_url",
    "sqlite_path",
    "translate_db_error",
]

SQLITE_PRAGMAS: Final = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
)
BEGIN_OPTION: Final = "gateway_begin"
"""Execution option naming the SQLite ``BEGIN`` mode of a transaction (``IMMEDIATE`` for writes)."""
_BEGIN_MODES: Final = ("DEFERRED", "IMMEDIATE")


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
            cursor.execute(pragma)
        cursor.execute("PRAGMA journal_mode")
        mode = str(cursor.fetchone()[0]).lower()
    finally:
        cursor.close()
    if mode not in ("wal", "memory"):
        # WAL needs shared memory on a local file system; on NFS it silently stays "delete".
        raise TransientError(f"SQLite refused WAL mode (journal_mode={mode}); put the database on a local disk")


def _on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
    if mode not in _BEGIN_MODES:
        raise ValueError(f"unknown BEGIN mode {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def create_engine(url: str | URL) -> AsyncEngine:
    """Create the async engine for ``url`` with the settings described in the module docstring.

    Raises:
        ConfigError: not a database URL, or not an async driver.
    """
    parsed = _parse(url)
    options: dict[str, Any] = {}
    if is_memory(parsed):
        # One connection, or every checkout would see a fresh empty database.
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    try:
        engine = create_async_engine(parsed, **options)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(
            f"[store] url {parsed.render_as_string()!r} cannot be used ({exc})",
            hint="use sqlite+aiosqlite:///path or postgresql+asyncpg://host/db",
        ) from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_connect)
        event.listen(engine.sync_engine, "begin", _on_begin)
    return engine


_FULL_ERRNOS: Final = (errno.ENOSPC, errno.EDQUOT)


def translate_db_error(exc: DBAPIError) -> TransientError:
    """Turn a driver error into what the edges understand (HOUSE.md rule 6).

    Database trouble (locked past the timeout, disk full, I/O error, connection lost) means
    "try again later": the SMTP edge answers 451, or 452 for a full disk.
    """
    text = str(exc.orig) if exc.orig is not None else str(exc)
    lowered = text.lower()
    orig_errno = getattr(exc.orig, "errno", None)
    if "full" in lowered or orig_errno in _FULL_ERRNOS or getattr(exc.orig, "sqlite_errorcode", None) == 13:
        return StorageFull(f"the database is full: {text}")
    return TransientError(f"database unavailable: {text}")
