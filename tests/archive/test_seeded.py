"""The seeded log fixture itself: every name is there, decided as its docstring says."""

from __future__ import annotations

from tests.archive.seeded import NAMES, SeededLog


def test_seeded_log_holds_every_name(seeded_log: SeededLog) -> None:
    assert set(seeded_log.ids) == set(NAMES) == set(seeded_log.documents)
    assert len(set(seeded_log.ids.values())) == len(NAMES)
    assert (seeded_log.config.parent / "gateway.db").exists()
