"""A real PostgreSQL (Debian ``postgresql``) on loopback, a throw-away cluster per test session.

``pg_server`` (session fixture) runs ``initdb`` into a temporary directory and starts the
cluster with ``pg_ctl`` on a free port of 127.0.0.1, its Unix socket in the same directory.
Nothing of the Debian ``main`` cluster is used: our own data directory, our own port, trust
authentication on loopback only (a test cluster: no password to keep), ``fsync=off`` (a power
cut would lose the throw-away data, nothing else; what the tests prove is locking and
recovery, not the disk). When the session ends it is stopped (``-m immediate``) and removed.

PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` user
(created by the Debian package) and its programs run through ``runuser``; otherwise as the
current user.

``pg_db`` (function fixture) creates a fresh database for each test (``pg_url``: just its
``postgresql+asyncpg://`` URL); ``PgDatabase.sql`` runs SQL in it behind the store's back (the
tamperer's view), through ``psql``.

Missing binaries: skipped locally, a failure in CI (``CI=true``), like ``tests.external``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.external import require_file
from tests.smtpsink import free_port

__all__ = ["BIN", "PgDatabase", "PostgresServer", "pg_db", "pg_server", "pg_url", "running_postgres"]

BIN = Path("/usr/lib/postgresql/15/bin")
"""Where Debian 12's ``postgresql-15`` installs the server programs (not on ``PATH``)."""
_USER = "postgres"
_START_SECONDS = 30


def _run_as() -> tuple[list[str], str | None]:
    """The command prefix that runs a server program, and the owner of the cluster's files."""
    if os.geteuid() != 0:
        return [], None
    try:
        pwd.getpwnam(_USER)
    except KeyError:  # pragma: no cover - the Debian package creates the user
        pytest.fail(f"running as root needs the {_USER!r} user (Debian package postgresql)", pytrace=False)
    return ["runuser", "-u", _USER, "--"], _USER


@dataclass
class PostgresServer:
    """A running throw-away cluster."""

    root: Path
    port: int
    host: str = "127.0.0.1"
    superuser: str = _USER
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.root / "data"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.root / "postgres.log"

    def url(self, database: str) -> str:
        """The store URL of ``database`` on this server."""
        return f"postgresql+asyncpg://{self.superuser}@{self.host}:{self.port}/{database}"

    def sql(self, statement: str, *, database: str = "postgres") -> list[tuple[str, ...]]:
        """Run ``statement`` with ``psql`` (superuser) and return the rows as text fields.

        Raises:
            AssertionError: psql failed (its message is included).
        """
        done = subprocess.run(
            [
                str(BIN / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-F",
                "\t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.superuser,
                "-d",
                database,
                "-c",
                statement,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"psql failed on {statement!r}: {done.stderr.strip()}"
        return [tuple(line.split("\t")) for line in done.stdout.splitlines() if line]

    def create_database(self, prefix: str = "gateway") -> str:
        """Create a new empty database (UTF-8) and return its name."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")
        return name


def _start(root: Path) -> PostgresServer:
    initdb = require_file(BIN / "initdb", "postgresql")
    prefix, owner = _run_as()
    data = root / "data"
    if owner is not None:
        root.chmod(0o755)  # the server user must reach its data directory and socket
        shutil.chown(root, owner)
    subprocess.run(
        [*prefix, str(initdb), "-D", str(data), "-U", _USER, "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
    options += " -c max_connections=200 -c shared_buffers=32MB"
    server = PostgresServer(root=root, port=port)
    command = [str(BIN / "pg_ctl"), "-D", str(data), "-l", str(server.log), "-o", options]
    started = subprocess.run(
        [*prefix, *command, "-w", "-t", str(_START_SECONDS), "start"],
        capture_output=True,
        text=True,
        timeout=_START_SECONDS + 30,
        check=False,
    )
    if started.returncode != 0:
        log = server.log.read_text(errors="replace") if server.log.exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr.strip()}\n{log[-2000:]}")
    return server


def _stop(server: PostgresServer) -> None:
    prefix, _ = _run_as()
    subprocess.run(
        [*prefix, str(BIN / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "-w", "stop"],
        capture_output=True,
        timeout=60,
        check=False,
    )


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a cluster in a new temporary directory; stop it and remove the directory on exit."""
    require_file(BIN / "initdb", "postgresql")
    root = Path(tempfile.mkdtemp(prefix="gateway-postgres-"))
    try:
        server = _start(root)
        try:
            yield server
        finally:
            _stop(server)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL cluster (started on first use)."""
    with running_postgres() as server:
        yield server


@dataclass(frozen=True)
class PgDatabase:
    """One database of the session's cluster."""

    server: PostgresServer
    name: str

    @property
    def url(self) -> str:
        """Its store URL."""
        return self.server.url(self.name)

    def sql(self, statement: str) -> list[tuple[str, ...]]:
        """Run ``statement`` in this database behind the store's back (rows as text)."""
        return self.server.sql(statement, database=self.name)


@pytest.fixture
def pg_db(pg_server: PostgresServer) -> PgDatabase:
    """A fresh, empty database for this test."""
    return PgDatabase(pg_server, pg_server.create_database())


@pytest.fixture
def pg_url(pg_db: PgDatabase) -> str:
    """A fresh, empty database for this test: its store URL."""
    return pg_db.url
