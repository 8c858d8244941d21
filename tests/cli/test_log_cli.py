"""``gateway log search`` and ``gateway log show`` as an archivist runs them (a real subprocess).

The receipt log is seeded through the Store API (``tests/archive/test_search.py``'s documents and
``test_record.py``'s record) in a gateway.toml site; every command only reads it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest

from gateway.clock import FixedClock
from gateway.store import Store
from tests.archive import test_record, test_search
from tests.command import gateway


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int], int]:
    """A gateway.toml whose receipt log holds the search documents and one full record."""
    etc = tmp_path_factory.mktemp("etc")
    (etc / "gateway.toml").write_text('[store]\nurl = "sqlite+aiosqlite:///gateway.db"\n', encoding="utf-8")

    async def scenario() -> tuple[list[int], int]:
        async with test_search.seeded(etc) as (store, ids):
            pass
        clock = FixedClock(test_record.T0)
        async with await Store.open(f"sqlite+aiosqlite:///{etc / 'gateway.db'}", clock=clock) as store:
            inbound, _ = await test_record._seed(store, clock)
        return ids, inbound

    ids, inbound = asyncio.run(scenario())
    return etc, ids, inbound


def test_search_table_shows_vietnam_times_and_the_next_page(site: tuple[Path, list[int], int]) -> None:
    etc, ids, _ = site
    done = gateway("log", "search", "--sender", test_search.HN, "--limit", "2", cwd=etc)
    assert done.returncode == 0, done.stderr
    assert "2025-03-15T08:00:00+07:00" in done.stdout  # doc 5, received 15 Mar 01:00 UTC
    assert "14/UBND-VP" in done.stdout
    assert "13/UBND-VP" in done.stdout
    assert "12/UBND-VP" not in done.stdout
    assert f"--before-id {ids[1]}" in done.stderr
    following = gateway("log", "search", "--sender", test_search.HN, "--before-id", str(ids[1]), cwd=etc)
    assert "12/UBND-VP" in following.stdout
    assert "13/UBND-VP" not in following.stdout


def test_search_json_and_csv(site: tuple[Path, list[int], int]) -> None:
    etc, ids, inbound = site
    done = gateway("log", "search", "--text", "kiem tra", "--format", "json", cwd=etc)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [i["id"] for i in data["items"]] == [inbound, ids[3], ids[0]]  # "Kiểm tra" without diacritics
    assert data["items"][0]["received_at"].endswith("+07:00")
    assert data["next_before_id"] is None
    done = gateway("log", "search", "--verdict", "refused", "--format", "csv", cwd=etc)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["code"] for r in rows] == ["45/STNMT-QLĐĐ"]
    assert rows[0]["finding_codes"] == "pdf-signature-invalid"
    assert rows[0]["received_at"] == "2025-03-12T08:00:00+07:00"


def test_a_search_that_finds_nothing_says_so_and_exits_0(site: tuple[Path, list[int], int]) -> None:
    done = gateway("log", "search", "--text", "'; DROP TABLE messages; --", cwd=site[0])
    assert done.returncode == 0
    assert "no documents match" in done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--from", "hôm qua"), "--from: from 'hôm qua' is not an age"),
        (("--verdict", "ok"), "--verdict: verdict 'ok' is not one of: accepted, refused, deferred"),
        (("--limit", "1000"), "--limit: limit '1000' is not a whole number in 1..500"),
        (("--before-id", "x"), "--before-id"),
        (("--format", "xml"), "--format 'xml' is not table, csv or json"),
    ],
)
def test_bad_options_exit_2_naming_the_option(
    site: tuple[Path, list[int], int], args: tuple[str, ...], says: str
) -> None:
    done = gateway("log", "search", *args, cwd=site[0])
    assert done.returncode == 2
    assert says in done.stderr


def test_show_prints_every_time_the_findings_the_policy_and_the_chain(site: tuple[Path, list[int], int]) -> None:
    etc, _, inbound = site
    done = gateway("log", "show", str(inbound), cwd=etc)
    assert done.returncode == 0, done.stderr
    for expected in (
        "2025-03-13T15:30:00+07:00",  # the signer's claimed signing time
        "2025-03-13T15:31:00+07:00",  # the time-stamp
        "2025-03-14T09:00:00+07:00",  # received (our time)
        "no-timestamp",
        "Chữ ký không có dấu thời gian",
        "The signature has no time-stamp",
        test_record.POLICY,
        "seq ",
    ):
        assert expected in done.stdout, expected


def test_show_json_and_an_unknown_id(site: tuple[Path, list[int], int]) -> None:
    etc, _, inbound = site
    data = json.loads(gateway("log", "show", str(inbound), "--json", cwd=etc).stdout)
    assert data["id"] == inbound
    assert data["verdict"]["policy"]["sha256"] == test_record.POLICY
    missing = gateway("log", "show", "99999", cwd=etc)
    assert missing.returncode == 1
    assert "no work item 99999" in missing.stderr
