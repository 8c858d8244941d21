#!/usr/bin/env python3
"""Check an evidence bundle's hash-chain proof offline (Python 3, standard library only).

Kiểm tra bằng chứng chuỗi băm của gói bằng chứng, không cần mạng (Python 3, chỉ thư viện chuẩn).

Usage / Cách dùng::

    python3 chain/verify.py            # from the unpacked bundle's directory / trong thư mục gói
    python3 chain/verify.py BUNDLE_DIR

Each journal row in ``chain/entries.json`` is recomputed as the gateway computes it::

    hash = SHA-256( prev_hash + canonical_json({"seq", "message_id", "event", "at", "data"}) )

where canonical JSON is UTF-8 with sorted keys, no white space and non-ASCII kept as is. Then the
bundle's files are tied to the rows that name them:

* ``original.eml``: its SHA-256 is the ``sha256`` of the ``received`` row;
* ``report.json``: the SHA-256 of its canonical JSON is the ``report_sha256`` of the last ``verdict`` row;
* ``policy.toml``: its SHA-256 is the ``policy_sha256`` of the last ``verdict`` row;
* ``record.json``: its ``id`` and ``sha256`` are the work item's.

Exit status: 0 every check passed; 1 a check failed (each one is printed); 2 the bundle cannot be read.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["canonical_json", "entry_hash", "main"]

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """The one JSON spelling the journal hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(entry: dict[str, Any]) -> str:
    """Recompute one journal row's hash from its previous hash and its content."""
    body = canonical_json(
        {
            "seq": entry["seq"],
            "message_id": entry["message_id"],
            "event": entry["event"],
            "at": entry["at"],
            "data": entry["data"],
        }
    )
    return hashlib.sha256((entry["prev_hash"] + body).encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Checks:
    """Prints each check and remembers whether one failed."""

    def __init__(self) -> None:
        self.failed = 0

    def check(self, ok: bool, what: str) -> None:
        """Report one check."""
        print(f"{'OK  ' if ok else 'FAIL'}  {what}")
        if not ok:
            self.failed += 1


def check_rows(checks: Checks, proof: dict[str, Any]) -> list[dict[str, Any]]:
    """Recompute every row's hash and the links between consecutive rows."""
    entries: list[dict[str, Any]] = proof["entries"]
    message_id = proof["message_id"]
    previous: dict[str, Any] | None = None
    for entry in entries:
        seq = entry["seq"]
        checks.check(entry_hash(entry) == entry["hash"], f"row {seq} ({entry['event']}): hash recomputed")
        checks.check(entry["message_id"] == message_id, f"row {seq}: about work item {message_id}")
        if previous is not None:
            checks.check(seq > previous["seq"], f"row {seq}: after row {previous['seq']}")
            if seq == previous["seq"] + 1:
                checks.check(entry["prev_hash"] == previous["hash"], f"row {seq}: prev_hash is row {seq - 1}'s hash")
        elif seq == 1:
            checks.check(entry["prev_hash"] == GENESIS, "row 1: prev_hash is the genesis value")
        previous = entry
    head = proof["head"]
    if previous is not None:
        checks.check(
            head["seq"] >= previous["seq"], f"the chain head at export (row {head['seq']}) is after these rows"
        )
        if head["seq"] == previous["seq"]:
            checks.check(head["hash"] == previous["hash"], "the chain head's hash is the last row's")
    return entries


def last(entries: list[dict[str, Any]], event: str) -> dict[str, Any] | None:
    """The data of the last row of ``event``, or None."""
    found = [e["data"] for e in entries if e["event"] == event]
    return found[-1] if found else None


def check_files(checks: Checks, root: Path, entries: list[dict[str, Any]]) -> None:
    """Tie the bundle's files to the journal rows that name them."""
    received = last(entries, "received")
    verdict = last(entries, "verdict")
    checks.check(received is not None, "the 'received' row is in the proof")
    original = root / "original.eml"
    if received is not None and original.is_file():
        checks.check(file_sha256(original) == received["sha256"], "original.eml is the mail the journal received")
    report = root / "report.json"
    if report.is_file():
        checks.check(verdict is not None, "report.json has a 'verdict' row")
        if verdict is not None:
            digest = hashlib.sha256(canonical_json(json.loads(report.read_text("utf-8"))).encode()).hexdigest()
            checks.check(digest == verdict.get("report_sha256"), "report.json is the report the verdict recorded")
    policy = root / "policy.toml"
    if policy.is_file() and verdict is not None:
        checks.check(file_sha256(policy) == verdict.get("policy_sha256"), "policy.toml is the policy the verdict names")
    record = root / "record.json"
    if record.is_file() and received is not None:
        row = json.loads(record.read_text("utf-8"))
        checks.check(row.get("sha256") == received["sha256"], "record.json names the received mail")


def main(argv: list[str]) -> int:
    """Run every check on the bundle in ``argv[1]`` (default: this script's parent directory)."""
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    try:
        proof = json.loads((root / "chain" / "entries.json").read_text("utf-8"))
        checks = Checks()
        entries = check_rows(checks, proof)
        check_files(checks, root, entries)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"cannot read the bundle in {root}: {exc!r}", file=sys.stderr)
        return 2
    if checks.failed:
        print(f"{checks.failed} check(s) FAILED / {checks.failed} kiểm tra KHÔNG đạt")
        return 1
    print("all checks passed / tất cả kiểm tra đều đạt")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
