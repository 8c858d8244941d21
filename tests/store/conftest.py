"""Fixtures of the store tests: the session's PostgreSQL cluster and a fresh database per test."""

from tests.postgres import pg_db, pg_server, pg_url

__all__ = ["pg_db", "pg_server", "pg_url"]
