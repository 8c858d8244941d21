"""The agency directory: who an OrganId is, where it receives mail, which certificates it signs with.

A TOML file, one ``[[agency]]`` per partner::

    [[agency]]
    organ_id = "000.00.00.G22"
    name = "Văn phòng Chính phủ"
    mail = ["vanthu@chinhphu.vn"]
    # The organisation certificates this agency signs with (SHA-256 of the DER, hex), and/or
    # patterns on their subject. With either set, an organisation signature that matches
    # neither is reported as sender-mismatch.
    certificates = ["9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"]
    subjects = ["O=Văn phòng Chính phủ"]

The mail gateway also reads ``mail`` to address refusals (status 02) to the sender.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from gateway.errors import ConfigError
from gateway.settings import TomlSource, table_from_toml

__all__ = ["Agency", "Directory", "directory_from_toml", "load_directory"]


@dataclass(frozen=True)
class Agency:
    """One partner agency."""

    organ_id: str
    name: str | None = None
    mail: tuple[str, ...] = ()
    certificates: tuple[str, ...] = ()
    """Upper-case hex SHA-256 fingerprints of its organisation certificates."""
    subjects: tuple[str, ...] = ()
    """Regular expressions searched in the RFC 4514 subject of its organisation certificates."""

    def __post_init__(self) -> None:
        # One spelling of a fingerprint: hex, upper case, no colons (as CertificateFacts has it).
        prints = tuple(c.replace(":", "").strip().upper() for c in self.certificates)
        object.__setattr__(self, "certificates", prints)

    def knows_its_certificates(self) -> bool:
        """Whether the directory says which certificates this agency signs with."""
        return bool(self.certificates or self.subjects)

    def owns(self, subject: str, sha256: str) -> bool:
        """Whether a certificate (by subject and fingerprint) is one of this agency's."""
        if sha256.upper() in self.certificates:
            return True
        return any(re.search(pattern, subject) for pattern in self.subjects)


@dataclass(frozen=True)
class Directory:
    """Agencies by OrganId."""

    agencies: Mapping[str, Agency] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, organ_id: str | None) -> Agency | None:
        return None if organ_id is None else self.agencies.get(organ_id.strip())


@dataclass(frozen=True)
class _File:
    agency: tuple[Agency, ...] = ()


def directory_from_toml(text: str, source: Path | str) -> Directory:
    """Parse a directory file.

    Raises:
        ConfigError: invalid TOML, unknown keys, a duplicate OrganId, a bad fingerprint or pattern.
    """
    origin = TomlSource(text, Path(source))
    parsed = table_from_toml(_File, origin.load(), origin)
    agencies: dict[str, Agency] = {}
    for entry in parsed.agency:
        key = entry.organ_id.strip()
        if key in agencies:
            raise origin.error(f"OrganId {key} appears twice", ("agency",), "organ_id")
        bad = [p for p in entry.certificates if not re.fullmatch(r"[0-9A-F]{64}", p)]
        if bad:
            raise origin.error(f"{key}: not SHA-256 fingerprints: {bad}", ("agency",), "certificates")
        try:
            for pattern in entry.subjects:
                re.compile(pattern)
        except re.error as exc:
            raise origin.error(f"{key}: invalid subject pattern ({exc})", ("agency",), "subjects") from None
        agencies[key] = replace(entry, organ_id=key)
    return Directory(MappingProxyType(agencies))


def load_directory(path: Path) -> Directory:
    """Read a directory file.

    Raises:
        ConfigError: the file cannot be read or is invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the agency directory ({exc.strerror})", path=path) from None
    return directory_from_toml(text, path)
