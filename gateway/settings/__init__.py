"""Typed, strict configuration: ``gateway.toml`` as frozen dataclasses (HOUSE.md rule 9).

``settings_from_toml(text, source)`` turns the text of a TOML file into ``Settings``. Every
table maps onto a frozen dataclass (filled by ``gateway.settings.reader.table_from_toml``); an
unknown table or key, a value of the wrong type or a value outside its choices is a
``ConfigError`` that names the file, the line, the key and what would be valid. Nothing here
reads files or the environment: the composition layer does that once at start-up and hands the
values down (no module-level globals).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.settings.reader import TomlSource, table_from_toml

__all__ = [
    "AxisSettings",
    "DevSettings",
    "DmsSettings",
    "EdxmlSettings",
    "HttpSettings",
    "IdentitySettings",
    "ImapSettings",
    "QueueSettings",
    "Settings",
    "SignSettings",
    "SmtpSettings",
    "StoreSettings",
    "SubmissionSettings",
    "TomlSource",
    "TrustSettings",
    "VerifySettings",
    "settings_from_toml",
    "table_from_toml",
]


def _listen(default: str) -> str:
    """A ``listen`` field: a value of the wrong type (``listen = 25``) is told the form expected."""
    port = default.rpartition(":")[2]
    form = f'HOST:PORT in quotes, e.g. listen = "{default}" or "[::1]:{port}"'
    return field(default=default, metadata={"form": form})


@dataclass(frozen=True)
class IdentitySettings:
    """``[identity]``: who we are on the axis."""

    organ_ids: tuple[str, ...] = ()
    """Our OrganIds. Packages addressed to none of them are misaddressed."""
    organ_name: str | None = None
    organization_in_charge: str | None = None
    address: str | None = None
    email: str | None = None
    telephone: str | None = None
    fax: str | None = None
    website: str | None = None


@dataclass(frozen=True)
class EdxmlSettings:
    """``[edxml]``: limits on read, choices on write."""

    max_package_bytes: int = 64 * 1024 * 1024
    max_attachment_bytes: int = 48 * 1024 * 1024
    max_depth: int = 40
    zip_other_files: bool = True
    """Zip attachments that are not PDF/Office files, as the VNPT SDK does (spec §1.7)."""
    signature_algorithm: Literal["rsa-sha256", "rsa-sha384", "rsa-sha512", "rsa-sha1"] = "rsa-sha256"
    """Envelope XMLDSig algorithm on write; rsa-sha1 only for a strict legacy peer."""


@dataclass(frozen=True)
class TrustSettings:
    """``[trust]``: the certificates trust comes from (names never decide trust)."""

    anchors: tuple[Path, ...] = ()
    """PEM/DER files of the trust anchors (e.g. the VGCA G2 root)."""
    anchor_sha256: tuple[str, ...] = ()
    """SHA-256 fingerprints every anchor file must match (pinning: a swapped file is refused)."""
    intermediates: tuple[Path, ...] = ()
    """Intermediate CA certificates to build paths with; never trusted by themselves."""


@dataclass(frozen=True)
class VerifySettings:
    """``[verify]``: how inbound packages are judged."""

    policy: Path | None = None
    """The admin's policy file; unset: the built-in strict default (config/policy.toml)."""
    directory: Path | None = None
    """The agency directory (OrganId, mail, organisation certificates)."""
    fetch_timeout_seconds: float = 20.0
    """Deadline for one OCSP/CRL request."""
    workers: int = 0
    """Processes reading PDFs (parsing, digests, difference analysis): 0 = one per usable CPU,
    1 = none (a worker thread of the gateway's process)."""


@dataclass(frozen=True)
class SignSettings:
    """``[sign]``: the organisation's key, the TSA, and how signatures look (Decree 30 App. I)."""

    key: Literal["pkcs12", "pkcs11"] = "pkcs12"
    """Where the organisation key lives."""
    pkcs12: Path | None = None
    """PKCS#12 file (``key = "pkcs12"``)."""
    pkcs12_password_env: str | None = None
    """Environment variable holding the PKCS#12 password (or use ``pkcs12_password_file``)."""
    pkcs12_password_file: Path | None = None
    pkcs11_module: Path | None = None
    """PKCS#11 module (``key = "pkcs11"``), e.g. /usr/lib/softhsm/libsofthsm2.so."""
    pkcs11_token_label: str | None = None
    pkcs11_key_label: str | None = None
    """Label of the private key (and of its certificate) on the token."""
    pkcs11_pin_env: str | None = None
    pkcs11_pin_file: Path | None = None
    tsa_url: str | None = None
    """RFC 3161 time-stamping service (the VGCA's: http://tsa.ca.gov.vn/). Required to seal."""
    tsa_timeout_seconds: float = 180.0
    """The VGCA TSA has been measured at 2-131 s (spec §5)."""
    tsa_attempts: int = 3
    tsa_concurrency: int = 8
    """Time-stamp requests in flight at once. Each holds its slot while the signature is written
    (so the painted time, /M and genTime agree): with a TSA 200 ms away, 4 slots gave 4.1x a serial
    pyHanko loop, 8 gave 6.1x (bench/README.md, issue 7 P2)."""
    b_lt: bool = False
    """Also embed revocation data (DSS) for long-term validation (PAdES-B-LT)."""
    seal_image: Path | None = None
    """Red seal PNG with transparency, for the main document's organisation signature."""
    seal_width_mm: float = 36.0
    seal_height_mm: float = 36.0
    """The seal's real size (Decree 30 App. I: drawn at actual size)."""
    font: Path = Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf")
    """Times-New-Roman-metric font with Vietnamese glyphs, embedded in text appearances."""


@dataclass(frozen=True)
class StoreSettings:
    """``[store]``: the receipt log and work queue, and the spool of original mails."""

    url: str = "sqlite+aiosqlite:///var/gateway.db"
    """SQLAlchemy URL; a relative SQLite path is relative to the configuration file."""
    spool: Path = Path("var/spool")
    instance: str | None = None
    """This process's name among instances sharing one database (unset: the host name); unique."""
    lease_seconds: float = 30.0
    """How long a claimed item stays this instance's without a renewal (then others take it back)."""


@dataclass(frozen=True)
class SmtpSettings:
    """``[smtp]``: the listener for packages from the axis (or as a Postfix content filter)."""

    listen: str = _listen("127.0.0.1:2525")
    hostname: str = "localhost"
    local_recipients: tuple[str, ...] = ()
    """RCPT for any other address is refused (550); empty: any recipient."""
    max_message_bytes: int = 64 * 1024 * 1024
    inline_verdict_seconds: float = 0.0
    """Wait this long for a verdict before answering DATA; a refusal then gets 550 in the dialogue."""
    tls_cert: Path | None = None
    tls_key: Path | None = None


@dataclass(frozen=True)
class SubmissionSettings:
    """``[submission]``: the listener for drafts from the DMS."""

    listen: str = _listen("127.0.0.1:5870")
    hostname: str = "localhost"
    max_message_bytes: int = 64 * 1024 * 1024
    tls_cert: Path | None = None
    tls_key: Path | None = None
    users_file: Path | None = None
    """``user:scrypt-hash`` lines; AUTH PLAIN/LOGIN is offered over TLS only."""
    allow_networks: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    """Clients in these networks may submit without AUTH."""


@dataclass(frozen=True)
class ImapSettings:
    """``[imap]``: an agency mailbox the axis delivers to (optional)."""

    host: str | None = None
    port: int = 993
    security: Literal["tls", "starttls", "none"] = "tls"
    user: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    mailbox: str = "INBOX"
    done_mailbox: str = "Processed"
    idle_renew_seconds: float = 1500.0
    """Re-issue IDLE before servers drop it (RFC 2177: 29 minutes)."""
    timeout_seconds: float = 60.0
    ca_file: Path | None = None
    """CA certificates to trust for the server's TLS certificate (default: the system's)."""


@dataclass(frozen=True)
class DmsSettings:
    """``[dms]``: where accepted packages go."""

    target: str = "maildir:var/dms"
    """``maildir:PATH``, ``smtp://host:port`` or ``lmtp://host:port``."""
    recipients: tuple[str, ...] = ()
    """The DMS mailbox(es) for SMTP/LMTP delivery."""
    notify: str | None = None
    """Where failure notices about outbound documents go."""
    mail_from: str = ""
    """Envelope sender for SMTP/LMTP delivery to the DMS (empty: the null sender)."""


@dataclass(frozen=True)
class AxisSettings:
    """``[axis]``: where sealed outbound packages and notices are relayed."""

    relay: str = "maildir:var/axis"
    """``smtp://host:port`` or ``maildir:PATH`` (a local sink)."""
    mail_from: str = "gateway@localhost"
    starttls: Literal["auto", "always", "never"] = "auto"
    """``auto``: upgrade when the relay offers STARTTLS (its certificate is verified)."""
    timeout_seconds: float = 120.0


@dataclass(frozen=True)
class QueueSettings:
    """``[queue]``: workers, retries, give-up ages."""

    workers: int = 4
    retry_initial_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    give_up_hours: float = 48.0
    """Outbound: after this long without a 2xx, failed and a notice to the DMS."""
    defer_max_age_hours: float = 24.0
    """Deferred verdicts older than this go to hold for an admin (never accepted blind)."""


@dataclass(frozen=True)
class HttpSettings:
    """``[http]``: the one HTTP port: ``/healthz``, ``/metrics``, the JSON API, pre-flight, the pages."""

    listen: str = _listen("127.0.0.1:8025")
    tokens: Path | None = None
    """Bearer tokens file (``name:scopes:sha256`` lines, ``gateway token add``); unset: only ``/healthz``."""
    metrics_public: bool = False
    """Serve ``/metrics`` without a token (a Prometheus on a trusted network); default: a ``read`` token."""


@dataclass(frozen=True)
class DevSettings:
    """``[dev]``: conveniences for the embedded default of ``make run``. Never in production."""

    pki: Path | None = None
    """Serve this development PKI bundle's OCSP, CRLs and TSA in-process (``gateway dev-pki DIR``)."""


@dataclass(frozen=True)
class Settings:
    """The whole of ``gateway.toml``."""

    identity: IdentitySettings = field(default_factory=IdentitySettings)
    edxml: EdxmlSettings = field(default_factory=EdxmlSettings)
    trust: TrustSettings = field(default_factory=TrustSettings)
    verify: VerifySettings = field(default_factory=VerifySettings)
    sign: SignSettings = field(default_factory=SignSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    submission: SubmissionSettings = field(default_factory=SubmissionSettings)
    imap: ImapSettings = field(default_factory=ImapSettings)
    dms: DmsSettings = field(default_factory=DmsSettings)
    axis: AxisSettings = field(default_factory=AxisSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    dev: DevSettings = field(default_factory=DevSettings)


def settings_from_toml(text: str, source: Path | str) -> Settings:
    """Parse ``gateway.toml`` text.

    Every relative path is relative to the file's directory, resolved exactly once: a path the
    file writes while it is read (``gateway.settings.reader``), a relative default path
    (``[store] spool``) here, and only for a key the file does not set. (A URL or a
    ``maildir:`` target is a string: its user resolves it against the same directory.)

    Args:
        text: the file's content.
        source: its path (for messages and for resolving relative paths).

    Raises:
        ConfigError: invalid TOML, unknown tables or keys, wrong types.
    """
    origin = TomlSource(text, Path(source))
    data = origin.load()
    return _defaults_beside(table_from_toml(Settings, data, origin), data, origin.path.parent)


def _defaults_beside(settings: Settings, data: dict[str, Any], base: Path) -> Settings:
    """Resolve the relative default paths of the keys ``data`` (the parsed file) does not set.

    A value the file writes was resolved while reading and is left alone, even when it comes out
    equal to the default (``spool = "spool"`` in ``var/gateway.toml`` is ``var/spool``); a
    default that was not written would otherwise stay relative to the working directory, unlike
    everything the file says.
    """
    sections: dict[str, Any] = {}
    for section_field in dataclasses.fields(settings):
        section = getattr(settings, section_field.name)
        # ``table_from_toml`` accepted the file: a section it names is a table.
        written = data.get(section_field.name, {})
        changes = {
            f.name: base / f.default
            for f in dataclasses.fields(section)
            if isinstance(f.default, Path) and not f.default.is_absolute() and f.name.rstrip("_") not in written
        }
        if changes:
            sections[section_field.name] = dataclasses.replace(section, **changes)
    return dataclasses.replace(settings, **sections)
