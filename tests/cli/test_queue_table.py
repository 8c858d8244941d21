"""``gateway queue list``'s table at narrow and wide consoles: ids, kinds, states and times are never cut.

A long last error used to make rich squeeze every column, so an admin read ``submis…``, ``fail…``
and ``2026-11-22T01:14:59+…`` even 250 columns wide. Now the free-text columns wrap, and a
console too narrow for the whole fixed columns gets one block per item instead of a table.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from rich.console import Console

from gateway.cli.queue import _listing
from gateway.clock import iso_vn
from gateway.store import MessageView

RECEIVED = datetime(2026, 11, 21, 18, 14, 59, tzinfo=UTC)
NEXT = datetime(2026, 11, 21, 18, 44, 59, tzinfo=UTC)
ERROR = "unexpected: SentUnrecorded: the relay said 250 but the store could not record it"


def _view(id: int, kind: str, state: str, error: str) -> MessageView:
    return MessageView(
        id=id, kind=kind, direction="out", state=state, channel="smtp", mail_from="vanthu@dms.tayninh.gov.vn",
        rcpt_to=("vanthu@vpcp.gov.vn",), message_id_header=None, sha256="0" * 64, size=1, received_at=RECEIVED,
        sent_at=None, document_id="000.00.01.H53,2026/11/21,12/UBND-VP", from_organ=None, to_organs=None, code=None,
        subject=None, package_kind=None, status_code=None, verdict=None, indication=None, findings=None, report=None,
        policy_sha256=None, attempts=3, next_attempt_at=NEXT, last_error=error, state_changed_at=RECEIVED,
        parent_id=None, recipient=None, imap_key=None,
    )  # fmt: skip


VIEWS = [
    _view(7, "submission", "failed", ERROR),
    _view(1234, "send", "deferred", "451 4.4.1 relay.tayninh.gov.vn: connection refused, try again later"),
]


def _shown(width: int) -> str:
    console = Console(width=width, record=True, soft_wrap=True, color_system=None)
    with console.capture() as captured:
        console.print(_listing(VIEWS, console.width))
    return captured.get()


@pytest.mark.parametrize("width", [80, 120, 160, 200, 250])
def test_fixed_columns_are_never_cut(width: int) -> None:
    shown = _shown(width)
    assert "…" not in shown  # nothing is clipped (the errors are shorter than the 80-character limit)
    for whole in ("7", "1234", "submission", "failed", "deferred", iso_vn(RECEIVED), iso_vn(NEXT)):
        assert re.search(rf"(?<![\w:+-]){re.escape(whole)}(?![\w:+-])", shown), (width, whole, shown)
    for word in ERROR.split():  # the error wraps, whole
        assert word in shown, (width, word, shown)


def test_a_wide_console_gets_one_table_row_per_item() -> None:
    shown = _shown(250)
    rows = [line for line in shown.splitlines() if line.split() and line.split()[0] in ("7", "1234")]
    assert len(rows) == 2
    assert rows[0].split()[:4] == ["7", "submission", "failed", iso_vn(RECEIVED)]
    assert ERROR in rows[0]


def test_the_error_column_wraps_rather_than_squeezing_the_others() -> None:
    shown = _shown(160)
    assert "last error" in shown
    lines = shown.splitlines()
    first = next(line for line in lines if line.startswith("7 "))
    assert first.split()[:4] == ["7", "submission", "failed", iso_vn(RECEIVED)]
    assert ERROR not in first  # it did not fit on one line: it wrapped onto the next ones
    assert len(lines) > 3


def test_a_narrow_console_gets_one_block_per_item() -> None:
    shown = _shown(80)
    assert "received (+07:00)" not in shown  # no table header
    assert f"7  submission  failed  received {iso_vn(RECEIVED)}  attempts 3" in shown
    assert f"next attempt: {iso_vn(NEXT)}" in shown
    assert f"last error:   {ERROR[:60]}" in shown
    assert all(len(line) <= 80 for line in shown.splitlines())  # long text wraps under its label
