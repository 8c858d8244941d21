"""Sealing: the organisation's PAdES signature, RFC 3161 timestamps, the envelope XMLDSig.

Entry points: ``Sealer.seal_document`` (one PDF by its role), ``PackageSealer.seal_package``
(a whole draft, self-checked), ``open_organisation_key`` (PKCS#12 or PKCS#11, once per
process), ``sign_envelope``. ``gateway.app.open_sealing`` builds them from settings.
"""

from gateway.sign.envelope import EnvelopeSigningError, sign_envelope
from gateway.sign.keys import OrganisationKey, SigningKey, load_pkcs12, read_pkcs12, read_secret
from gateway.sign.openkey import open_organisation_key
from gateway.sign.package import DraftRefused, PackageSealer, SelfCheckFailed
from gateway.sign.pdfseal import Sealer
from gateway.sign.pkcs11 import Pkcs11Key
from gateway.sign.refusals import SealingDeferred, SealingRefused
from gateway.sign.request import COPY_TYPES, SealKind, SealRequest
from gateway.sign.tsa import TsaClient, TsaUnavailable

__all__ = [
    "COPY_TYPES",
    "DraftRefused",
    "EnvelopeSigningError",
    "OrganisationKey",
    "PackageSealer",
    "Pkcs11Key",
    "SealKind",
    "SealRequest",
    "Sealer",
    "SealingDeferred",
    "SealingRefused",
    "SelfCheckFailed",
    "SigningKey",
    "TsaClient",
    "TsaUnavailable",
    "load_pkcs12",
    "open_organisation_key",
    "read_pkcs12",
    "read_secret",
    "sign_envelope",
]
