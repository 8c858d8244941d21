"""The public surface is explicit and pinned (HOUSE.md rule 8, after httpx's test_exported_members).

Changing what a package exports is a decision: update the expected set here in the same commit.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import gateway

PINNED = {
    "gateway.edxml": {
        "CATALOGUE", "DEFAULT_LIMITS", "Attachment", "BuildError", "Business", "BusinessDocType",
        "BusinessDocumentInfo", "DocumentCode", "DocumentMeta", "DocumentPackage", "DocumentType", "Finding",
        "FindingKind", "MessageHeader", "OrganId", "Organization", "OtherInfo", "Package", "ParseResult",
        "PromulgationInfo", "Receiver", "ReplacementInfo", "ResponseFor", "Severity", "SignerInfo", "StaffInfo",
        "StatusCode", "StatusPackage", "TraceHeader", "TraceHeaderList", "XMLLimits", "XMLRejected",
        "attachment_from_file", "build", "check_package", "default_document_id", "is_valid_organ_id", "load_meta",
        "make_status", "parse", "parse_tree", "parse_untrusted", "sniff",
    },
    "gateway.verify": {
        "ALL_KINDS", "Action", "Agency", "Directory", "EnvelopeSignature", "ExamSettings", "Examiner", "Policy",
        "ReadPackage", "ReportFinding", "SignatureState", "TrustStore", "VerificationReport", "Verdict", "Verifier",
        "load_directory", "load_policy", "read_package", "verify_envelope", "verify_package",
    },
    "gateway.sign": {
        "COPY_TYPES", "DraftRefused", "EnvelopeSigningError", "OrganisationKey", "PackageSealer", "Pkcs11Key",
        "SealKind", "SealRequest", "Sealer", "SealingDeferred", "SealingRefused", "SelfCheckFailed", "SigningKey",
        "TsaClient", "TsaUnavailable", "load_pkcs12", "open_organisation_key", "read_pkcs12", "read_secret",
        "sign_envelope",
    },
    "gateway.store": {
        "KINDS", "STATES", "TERMINAL", "AlreadyRecorded", "ChainCheck", "Intake", "InvalidTransition", "JournalView",
        "MessageView", "NotFound", "Spool", "SpoolCorrupted", "SpoolError", "SpoolMissing", "SpoolWriter", "Spooled",
        "StatusEventView",
        "StorageFull", "Store", "StoreError", "resolve_url",
    },
    "gateway.smtpserver": {
        "LOCAL_ERROR", "SHUTTING_DOWN", "TOO_BIG", "EdgeEnvelope", "EdgeHandler", "EdgeSMTP", "IntakePort", "ItemRef",
        "ListenerEdge", "MailSink", "SmtpListener",
        "current_session", "parse_listen", "read_data", "server_tls_context", "stream_data",
    },
    "gateway.app": {
        "HANDLERS", "Running", "Sealing", "load_trust_store", "open_sealing", "open_verifier", "policy_from_settings",
        "reload_policy", "run", "serve",
    },
    "gateway.cli": {"app", "main"},
    "gateway.archive": {
        "DocumentRecord", "EvidenceSummary", "FilterError", "Flip", "PartnersReport", "ReplayResult", "SearchFilter",
        "SearchPage", "TimelineEntry", "build_evidence", "build_filter", "load_record", "message_json", "parse_when",
        "partner_report", "replay", "search",
    },
    "gateway.web": {
        "API_PREFIX", "SCOPES", "Health", "TokenInfo", "TokenStore", "WebDeps", "WebServer", "authenticate",
        "create_app", "require",
    },
}  # fmt: skip


def all_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(gateway.__path__, "gateway.") if m.name != "gateway.__main__")


@pytest.mark.parametrize("package", sorted(PINNED))
def test_package_exports_are_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == PINNED[package]


@pytest.mark.parametrize("name", all_modules())
def test_every_module_declares_its_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
