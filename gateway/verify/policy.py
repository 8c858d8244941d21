"""The admin's rules: which finding refuses, defers, warns or is ignored (HOUSE.md rule 10).

A policy file (``config/policy.toml``) holds:

* ``[policy]`` name and version, shown on every verdict;
* ``[actions]`` code = "reject" | "defer" | "warn" | "ignore" — codes not named keep the
  built-in strict default (``DEFAULT_ACTIONS``);
* ``[revocation] mode`` = "hard-fail" | "soft-fail" | "off": what a missing revocation answer
  means. It alone decides ``revocation-unavailable`` (defer, warn, or no check at all), so no
  admin can make the gateway accept blind by a stray line in ``[actions]``;
* ``[modifications] allowed``: changes after signing that are acceptable;
* ``[algorithms]``: key-size floors, accepted hashes, the SHA-1 cutoff for legacy signatures;
* ``[time] clock_skew_seconds``: tolerance when comparing times;
* ``[signers]``: how an organisation certificate is recognised (policy OIDs or subject
  patterns), for the Decree 30 Art. 5 presence check.

Unknown tables, keys, codes and values are errors naming the file, the line and the valid
choices. The policy's hash is the SHA-256 of its canonical text (``Policy.canonical``), which
``gateway rules show`` prints and every verdict records, so a verdict can always be traced to
the exact rules it was made under.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from gateway.errors import ConfigError
from gateway.settings import TomlSource, table_from_toml
from gateway.verify.codes import ALL_KINDS
from gateway.verify.facts import Modification

__all__ = [
    "DEFAULT_ACTIONS",
    "Action",
    "AlgorithmPolicy",
    "Policy",
    "RevocationMode",
    "SignerPolicy",
    "load_policy",
    "policy_from_toml",
]

RevocationMode = Literal["hard-fail", "soft-fail", "off"]


class Action(StrEnum):
    """What a finding does to the verdict."""

    REJECT = "reject"
    DEFER = "defer"
    WARN = "warn"
    IGNORE = "ignore"


_R, _D, _W, _I = Action.REJECT, Action.DEFER, Action.WARN, Action.IGNORE

DEFAULT_ACTIONS: Mapping[str, Action] = MappingProxyType(
    {
        # The bytes are not a package we can read, or show the shape of tampering.
        "xml-malformed": _R, "xml-forbidden-construct": _R, "xml-too-large": _R,
        "edxml-not-edxml": _R, "edxml-missing-field": _R, "edxml-duplicate-element": _R,
        "edxml-attachment-mismatch": _R, "edxml-attachment-decode": _R, "edxml-attachment-too-large": _R,
        # Sloppy but harmless metadata: tell the sender, do not refuse the document for it.
        "edxml-bad-org-id": _W, "edxml-bad-value": _W, "edxml-bad-date": _W, "edxml-date-in-future": _W,
        "edxml-field-too-long": _W, "edxml-misplaced-element": _W, "edxml-foreign-namespace": _W,
        "edxml-unusual-value": _W, "edxml-business-inconsistent": _W, "edxml-attachment-type": _W,
        # Tolerated quirks of real peers.
        "edxml-lenient-date": _I, "edxml-unknown-element": _I, "edxml-legacy-namespace": _I,
        "edxml-variant-spelling": _I, "edxml-signature-namespace": _I, "edxml-test-org-id": _I,
        "edxml-status-code-alias": _I,
        # Decree 30 Art. 21.2.b: wrong recipient goes back to the sender.
        "misaddressed": _R, "sender-mismatch": _R, "attachment-not-pdf": _W,
        # The axis does not sign envelopes (spec §4.1): absence and the SDK placeholder are facts,
        # a signature that is present but wrong is a sign of tampering.
        "envelope-signature-absent": _I, "envelope-signature-placeholder": _I, "envelope-signature-invalid": _R,
        # Checklist A2-A8: every signature must hold.
        "pdf-unreadable": _R, "pdf-unsigned": _R, "pdf-signature-invalid": _R, "pdf-modified-after-signing": _R,
        "cert-expired": _R, "cert-not-yet-valid": _R, "cert-revoked": _R, "cert-untrusted": _R,
        "cert-key-usage": _R, "cert-is-ca": _R, "algorithm-weak": _R, "algorithm-legacy": _W,
        "timestamp-invalid": _W, "timestamp-absent": _W,
        "person-signature-missing": _R, "org-signature-missing": _R,
        # Decided by [revocation] mode; listed for completeness.
        "revocation-unavailable": _D,
    }
)  # fmt: skip

_REVOCATION_CODE = "revocation-unavailable"
_REVOCATION_ACTIONS: Mapping[str, Action | None] = {"hard-fail": _D, "soft-fail": _W, "off": None}

SECURE_HASHES = ("sha256", "sha384", "sha512", "sha512_224", "sha512_256", "sha3_256", "sha3_384", "sha3_512")


@dataclass(frozen=True)
class AlgorithmPolicy:
    """``[algorithms]``: Circular 15/2025 floors (checklist A7)."""

    rsa_min_bits: int = 2048
    ecdsa_min_bits: int = 256
    hashes: tuple[str, ...] = SECURE_HASHES
    """Digests accepted without comment (asn1crypto names: sha256, sha3_256...)."""
    sha1_cutoff: date | None = None
    """SHA-1 signatures dated by a trusted timestamp before this day are legacy (warn), not weak.
    Unset: SHA-1 is always weak."""

    def __post_init__(self) -> None:
        # Order carries no meaning: keep one form so equal policies compare and hash equal.
        object.__setattr__(self, "hashes", tuple(sorted(set(self.hashes))))


@dataclass(frozen=True)
class SignerPolicy:
    """``[signers]``: how to tell an organisation's certificate from a person's (Decree 30 Art. 5)."""

    organisation_policy_oids: tuple[str, ...] = ()
    person_policy_oids: tuple[str, ...] = ()
    organisation_subject_patterns: tuple[str, ...] = ()
    """Regular expressions searched in the RFC 4514 subject (e.g. ``"^CN=UBND "``)."""

    def __post_init__(self) -> None:
        for pattern in self.organisation_subject_patterns:
            re.compile(pattern)  # raises re.error, reported by the loader
        object.__setattr__(self, "organisation_policy_oids", tuple(sorted(set(self.organisation_policy_oids))))
        object.__setattr__(self, "person_policy_oids", tuple(sorted(set(self.person_policy_oids))))


@dataclass(frozen=True)
class _PolicyTable:
    name: str = "strict-lawful"
    version: str = "1"


@dataclass(frozen=True)
class _RevocationTable:
    mode: RevocationMode = "hard-fail"


@dataclass(frozen=True)
class _ModificationsTable:
    allowed: tuple[Literal["none", "lta-updates", "form-filling", "annotations", "other"], ...] = (
        "none",
        "lta-updates",
    )


@dataclass(frozen=True)
class _TimeTable:
    clock_skew_seconds: int = 300


@dataclass(frozen=True)
class Policy:
    """The effective policy: every code has an action."""

    name: str = "strict-lawful"
    version: str = "1"
    actions: Mapping[str, Action] = field(default_factory=lambda: DEFAULT_ACTIONS)
    revocation_mode: RevocationMode = "hard-fail"
    allowed_modifications: frozenset[Modification] = frozenset({Modification.NONE, Modification.LTA_UPDATES})
    algorithms: AlgorithmPolicy = field(default_factory=AlgorithmPolicy)
    clock_skew: timedelta = timedelta(seconds=300)
    signers: SignerPolicy = field(default_factory=SignerPolicy)

    def action_for(self, code: str) -> Action | None:
        """The action for ``code``; ``None`` means the check is off (``revocation-unavailable``
        under ``mode = "off"``).

        Raises:
            KeyError: for a code that is not catalogued (a programming error).
        """
        if code == _REVOCATION_CODE:
            return _REVOCATION_ACTIONS[self.revocation_mode]
        return self.actions[code]

    @property
    def canonical(self) -> str:
        """The effective policy as deterministic TOML; its SHA-256 is the policy hash."""
        lines = [
            "# Effective verification policy (canonical form). Its SHA-256 is the policy hash.",
            "[policy]",
            f"name = {json.dumps(self.name, ensure_ascii=False)}",
            f"version = {json.dumps(self.version, ensure_ascii=False)}",
            "",
            "[revocation]",
            f'mode = "{self.revocation_mode}"',
            "",
            "[modifications]",
            f"allowed = {_toml_list(m.value for m in Modification if m in self.allowed_modifications)}",
            "",
            "[algorithms]",
            f"rsa_min_bits = {self.algorithms.rsa_min_bits}",
            f"ecdsa_min_bits = {self.algorithms.ecdsa_min_bits}",
            f"hashes = {_toml_list(self.algorithms.hashes)}",
        ]
        if self.algorithms.sha1_cutoff is not None:
            lines.append(f"sha1_cutoff = {self.algorithms.sha1_cutoff.isoformat()}")
        lines += [
            "",
            "[time]",
            f"clock_skew_seconds = {int(self.clock_skew.total_seconds())}",
            "",
            "[signers]",
            f"organisation_policy_oids = {_toml_list(self.signers.organisation_policy_oids)}",
            f"person_policy_oids = {_toml_list(self.signers.person_policy_oids)}",
            f"organisation_subject_patterns = {_toml_list(self.signers.organisation_subject_patterns)}",
            "",
            "[actions]",
        ]
        lines += [
            f'"{code}" = "{self.actions[code].value}"' for code in sorted(self.actions) if code != _REVOCATION_CODE
        ]
        return "\n".join(lines) + "\n"

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of ``canonical`` (UTF-8)."""
        return hashlib.sha256(self.canonical.encode()).hexdigest()


def _toml_list(values: Any) -> str:
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


_TABLES = ("policy", "actions", "revocation", "modifications", "algorithms", "time", "signers")


def _actions(source: TomlSource, table: Any) -> dict[str, Action]:
    if not isinstance(table, dict):
        raise source.error("[actions] must be a table of code = action", ("actions",))
    actions = dict(DEFAULT_ACTIONS)
    choices = ", ".join(a.value for a in Action)
    for code, value in table.items():
        if code == _REVOCATION_CODE:
            raise source.error(
                f"'{code}' is decided by [revocation] mode",
                ("actions",),
                code,
                hint='set mode = "hard-fail" (defer), "soft-fail" (warn) or "off" (no check) instead',
            )
        if code not in ALL_KINDS:
            near = difflib.get_close_matches(code, list(ALL_KINDS), n=1)
            guess = f"did you mean '{near[0]}'? " if near else ""
            raise source.error(
                f"unknown finding code '{code}' in [actions]",
                ("actions",),
                code,
                hint=guess + "valid codes: " + ", ".join(sorted(ALL_KINDS)),
            )
        if value not in {a.value for a in Action}:
            raise source.error(f"'{code}' = {value!r} in [actions]; valid actions: {choices}", ("actions",), code)
        actions[code] = Action(value)
    return actions


def policy_from_toml(text: str, source: Path | str) -> Policy:
    """Read a policy file's text.

    Raises:
        ConfigError: invalid TOML, unknown tables/keys/codes, values outside their choices.
    """
    origin = TomlSource(text, Path(source))
    data = origin.load()
    for name in data:
        if name not in _TABLES:
            raise origin.error(f"unknown table [{name}]", (name,), hint="valid tables: " + ", ".join(_TABLES))
    meta = table_from_toml(_PolicyTable, data.get("policy", {}), origin, ("policy",))
    revocation = table_from_toml(_RevocationTable, data.get("revocation", {}), origin, ("revocation",))
    modifications = table_from_toml(_ModificationsTable, data.get("modifications", {}), origin, ("modifications",))
    algorithms = table_from_toml(AlgorithmPolicy, data.get("algorithms", {}), origin, ("algorithms",))
    unknown_hashes = set(algorithms.hashes) - set(SECURE_HASHES)
    if unknown_hashes:
        raise origin.error(
            f"[algorithms] hashes holds {sorted(unknown_hashes)}, which are not secure digests",
            ("algorithms",),
            "hashes",
            hint="choose from " + ", ".join(SECURE_HASHES) + "; SHA-1 is handled by sha1_cutoff",
        )
    time = table_from_toml(_TimeTable, data.get("time", {}), origin, ("time",))
    if time.clock_skew_seconds < 0:
        raise origin.error("[time] clock_skew_seconds cannot be negative", ("time",), "clock_skew_seconds")
    try:
        signers = table_from_toml(SignerPolicy, data.get("signers", {}), origin, ("signers",))
    except re.error as exc:
        message = f"[signers] a subject pattern is not a valid regular expression: {exc}"
        raise origin.error(message, ("signers",), "organisation_subject_patterns") from None
    return Policy(
        name=meta.name,
        version=meta.version,
        actions=MappingProxyType(_actions(origin, data.get("actions", {}))),
        revocation_mode=revocation.mode,
        allowed_modifications=frozenset(Modification(m) for m in modifications.allowed),
        algorithms=algorithms,
        clock_skew=timedelta(seconds=time.clock_skew_seconds),
        signers=signers,
    )


def load_policy(path: Path) -> Policy:
    """Read and parse a policy file.

    Raises:
        ConfigError: the file cannot be read or is invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("policy file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the policy file ({exc})", path=path) from None
    return policy_from_toml(text, path)
