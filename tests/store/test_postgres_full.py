"""A full disk on PostgreSQL is ``StorageFull`` (452), like SQLite's SQLITE_FULL; other trouble is 451.

``translate_db_error`` reads PostgreSQL's SQLSTATE: 53100 disk_full is a full disk; 53200
out_of_memory and 53300 too_many_connections pass with the load (plain ``TransientError``);
an error text that merely contains "full" is not a full disk. The unit cases wrap asyncpg's own
exception classes as SQLAlchemy does; the last case has a real server raise 53100 inside an
intake, through asyncpg, SQLAlchemy and the store's writer.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from gateway.errors import TransientError
from gateway.store import StorageFull
from gateway.store.db import translate_db_error
from tests.postgres import PgDatabase
from tests.store.helpers import intake
from tests.store.test_postgres import opened


def _wrapped(error: Exception) -> DBAPIError:
    return DBAPIError("INSERT INTO messages ...", {}, error)


@pytest.mark.parametrize(
    ("error", "kind", "reply"),
    [
        (asyncpg.exceptions.DiskFullError("could not extend file: No space left on device"), StorageFull, "452 "),
        (asyncpg.exceptions.OutOfMemoryError("out of memory"), TransientError, "451 "),
        (asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"), TransientError, "451 "),
        (asyncpg.exceptions.UndefinedColumnError('column "fullname" does not exist'), TransientError, "451 "),
        (
            asyncpg.exceptions.QueryCanceledError("canceling statement: the table is full of rows"),
            TransientError,
            "451 ",
        ),
    ],
)
def test_postgresql_errors_by_sqlstate(error: Exception, kind: type[TransientError], reply: str) -> None:
    translated = translate_db_error(_wrapped(error))
    assert type(translated) is kind
    assert translated.smtp_reply.startswith(reply)
    assert str(error) in str(translated)


def test_a_server_that_reports_a_full_disk_makes_the_intake_storage_full(pg_db: PgDatabase) -> None:
    async def scenario() -> None:
        async with opened(pg_db.url) as store:
            await store.record_intake(intake(0))
            pg_db.sql(
                "CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'could not extend file \"base/1/2\": No space left on device' "
                "USING ERRCODE = 'disk_full'; END $$"
            )
            pg_db.sql("CREATE TRIGGER full_disk BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION full_disk()")
            with pytest.raises(StorageFull, match="No space left on device") as caught:
                await store.record_intake(intake(1))
            assert caught.value.smtp_reply.startswith("452 ")
            assert isinstance(caught.value.__cause__, DBAPIError)
            pg_db.sql("DROP TRIGGER full_disk ON messages")
            await store.record_intake(intake(1))  # space again: the store works on
            assert (await store.verify_chain()).ok

    asyncio.run(scenario())
