"""The development PKI's template: read it, resolve its anchor-relative times, fill in the URL.

The template (``vgca-test.yml``, shipped as package data) is a certomancer configuration plus
a ``devpki`` section that describes each certificate (key kind, role, purpose) and the policy
OIDs. This module turns it into a *filled* configuration: absolute ISO 8601 times, the service
URL prefix, random serial numbers and the ``keysets`` section. The filled configuration is what
``DevPKI`` writes to ``certomancer.yml`` and what ``DevPKI.load`` reads back, so a written
bundle can be served again without the template.

Invariant: ``split_config`` is the only place that knows where the ``devpki`` section lives;
certomancer never sees it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from importlib import resources
from typing import Any, cast
from urllib.parse import urlsplit

import yaml

from gateway.clock import to_utc
from gateway.errors import ConfigError

__all__ = [
    "KEY_DIR",
    "TEMPLATE",
    "CertificateProfile",
    "PolicyOids",
    "Role",
    "SplitConfig",
    "check_base_url",
    "dump_config",
    "render_template",
    "split_config",
]

TEMPLATE = "vgca-test.yml"
"""Name of the template inside the ``gateway.devpki`` package."""

KEY_DIR = "keys"
"""Directory (relative to the configuration file) that holds ``<label>.key.pem``."""

_OFFSET = re.compile(r"^(?P<sign>[+-]?)(?P<count>\d+)(?P<unit>[ydh]?)$")
_UNIT = {"y": timedelta(days=365), "d": timedelta(days=1), "h": timedelta(hours=1), "": timedelta(0)}


class Role(StrEnum):
    """What a certificate is for; decides where ``write_bundle`` puts it."""

    ANCHOR = "anchor"
    INTERMEDIATE = "intermediate"
    SIGNER = "signer"
    NEGATIVE = "negative"
    SERVICE = "service"
    IMPOSTOR_CA = "impostor-ca"
    IMPOSTOR = "impostor"

    @property
    def is_ca(self) -> bool:
        """True for certificates that issue others (no PKCS#12 is written for them)."""
        return self in (Role.ANCHOR, Role.INTERMEDIATE, Role.IMPOSTOR_CA)


@dataclass(frozen=True)
class CertificateProfile:
    """One certificate of the development PKI, as the template describes it."""

    label: str
    key: str
    """Key kind: ``rsa-<bits>`` or ``ec-p256``."""
    role: Role
    purpose: str


@dataclass(frozen=True)
class PolicyOids:
    """certificatePolicies OIDs that tell organisation certificates from personal ones."""

    organisation: str
    person: str


@dataclass(frozen=True)
class SplitConfig:
    """A filled configuration, split into our metadata and certomancer's part."""

    architecture: str
    anchor: datetime
    base_url: str
    policies: PolicyOids
    certificates: tuple[CertificateProfile, ...]
    certomancer: dict[str, Any]


class _Offset:
    """A ``!anchor`` value before the anchor is known."""

    def __init__(self, delta: timedelta) -> None:
        self.delta = delta


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader plus the ``!anchor`` tag (a subclass, so the global SafeLoader stays untouched)."""


def _construct_offset(loader: yaml.SafeLoader, node: yaml.Node) -> _Offset:
    text = str(loader.construct_scalar(cast(yaml.ScalarNode, node))).strip()
    match = _OFFSET.match(text)
    if match is None:
        raise ConfigError(f"bad !anchor offset {text!r}; write e.g. -5y, +30d, -2h or 0", path=TEMPLATE)
    delta = int(match["count"]) * _UNIT[match["unit"]]
    return _Offset(-delta if match["sign"] == "-" else delta)


_TemplateLoader.add_constructor("!anchor", _construct_offset)


class _PlainDumper(yaml.SafeDumper):
    """Write shared sub-trees out in full: the filled file is read by people, not only YAML."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _resolve(node: Any, anchor: datetime) -> Any:
    # Rebuild the tree instead of patching it in place: YAML aliases share sub-trees.
    if isinstance(node, _Offset):
        return (anchor + node.delta).isoformat()
    if isinstance(node, dict):
        return {key: _resolve(value, anchor) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(value, anchor) for value in node]
    return node


def check_base_url(base_url: str) -> str:
    """Validate and normalise the URL prefix baked into AIA and CDP extensions.

    Args:
        base_url: e.g. ``http://127.0.0.1:8790``.

    Returns:
        The URL without a trailing slash.

    Raises:
        ConfigError: unless it is an absolute http(s) URL with a host and no query or fragment.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"bad PKI base URL {base_url!r}",
            hint="give an absolute http:// URL such as http://127.0.0.1:8790",
        )
    try:
        _ = parts.port
    except ValueError as exc:
        raise ConfigError(f"bad port in PKI base URL {base_url!r}") from exc
    return base_url.rstrip("/")


def render_template(*, anchor: datetime, base_url: str) -> dict[str, Any]:
    """Fill the packaged template for one anchor time and URL prefix.

    Args:
        anchor: aware time that every ``!anchor`` offset is relative to (microseconds dropped).
        base_url: URL prefix of the served services (see ``check_base_url``).

    Returns:
        The filled configuration (``devpki`` section included), with fresh random serials
        and the ``keysets`` section pointing at ``keys/<label>.key.pem``.

    Raises:
        ConfigError: for a bad URL or a broken template.
        ValueError: for a naive ``anchor``.
    """
    anchor = to_utc(anchor).replace(microsecond=0)
    base_url = check_base_url(base_url)
    text = resources.files("gateway.devpki").joinpath(TEMPLATE).read_text(encoding="utf-8")
    raw = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    config = cast(dict[str, Any], _resolve(raw, anchor))
    meta = config["devpki"]
    arch_label = meta["architecture"]
    meta["anchor"] = anchor.isoformat()
    meta["base-url"] = base_url
    config["external-url-prefix"] = base_url
    arch = config["pki-architectures"][arch_label]
    for spec in arch["certs"].values():
        # Random 63-bit serials, top bit set so every serial has the same length.
        spec["serial"] = secrets.randbits(62) | (1 << 62)
    config["keysets"] = {
        arch["keyset"]: {
            "path-prefix": KEY_DIR,
            "keys": {label: {"path": f"{label}.key.pem"} for label in meta["certificates"]},
        }
    }
    return config


def split_config(config: Mapping[str, Any], *, source: str) -> SplitConfig:
    """Separate a filled configuration into our metadata and certomancer's configuration.

    Args:
        config: what ``render_template`` returned, or the parsed ``certomancer.yml``.
        source: file name for error messages.

    Returns:
        The split configuration; ``certomancer`` is a fresh dict without ``devpki``.

    Raises:
        ConfigError: when the ``devpki`` section is missing or malformed.
    """
    try:
        meta = config["devpki"]
        profiles = tuple(
            CertificateProfile(label=label, key=entry["key"], role=Role(entry["role"]), purpose=entry["purpose"])
            for label, entry in meta["certificates"].items()
        )
        policies = PolicyOids(organisation=meta["policies"]["organisation"], person=meta["policies"]["person"])
        split = SplitConfig(
            architecture=meta["architecture"],
            anchor=to_utc(datetime.fromisoformat(meta["anchor"])),
            base_url=check_base_url(meta["base-url"]),
            policies=policies,
            certificates=profiles,
            certomancer={key: value for key, value in config.items() if key != "devpki"},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"not a development PKI configuration ({exc!r})", path=source) from exc
    return split


def dump_config(config: Mapping[str, Any]) -> str:
    """Render a filled configuration as YAML (UTF-8 names kept readable, no aliases)."""
    header = "# Generated by `gateway dev-pki` from gateway/devpki/vgca-test.yml. TEST ONLY.\n"
    body = yaml.dump(dict(config), Dumper=_PlainDumper, allow_unicode=True, sort_keys=False, width=110)
    return header + body
