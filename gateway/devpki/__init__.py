"""The development PKI: a TEST copy of the VGCA G2 chain with OCSP, CRLs and a TSA.

Used by ``gateway dev-pki`` (a bundle for people and for ``make run``) and by the test suite
(``tests/pki.py``): every crypto test signs and verifies against it. It lives at the edge
layer because it writes files and serves HTTP; nothing in the gateway's own pipeline imports it.

Entry points: ``DevPKI.generate`` / ``DevPKI.load``, ``write_bundle`` + ``BundleLayout``,
``bind_listener`` + ``serve_pki``. The certificates are described in ``vgca-test.yml``.
"""

from gateway.devpki.bundle import fingerprint, write_bundle
from gateway.devpki.layout import CONFIG_FILE, MANIFEST, BundleLayout
from gateway.devpki.pki import DevPKI, ServiceUrls
from gateway.devpki.server import FAKE_TIME_HEADER, PKIServer, bind_listener, serve_pki
from gateway.devpki.template import CertificateProfile, PolicyOids, Role

__all__ = [
    "CONFIG_FILE",
    "FAKE_TIME_HEADER",
    "MANIFEST",
    "BundleLayout",
    "CertificateProfile",
    "DevPKI",
    "PKIServer",
    "PolicyOids",
    "Role",
    "ServiceUrls",
    "bind_listener",
    "fingerprint",
    "serve_pki",
    "write_bundle",
]
