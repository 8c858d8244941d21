"""The development PKI as pytest fixtures: one per test session, served over real HTTP.

``dev_pki`` is a ``gateway.devpki.DevPKI`` whose services answer on a loopback port:

* certificates and keys by label: ``dev_pki.certificate("person")``, ``.private_key("org")``,
  ``.chain("person")`` (issuers, root last), ``.pkcs12("org", b"pw")``, ``.certificate_asn1(...)``;
* ``dev_pki.base_url`` (``http://127.0.0.1:<port>``) and ``dev_pki.urls`` (OCSP, CRL, TSA, ...),
  exactly the URLs the certificates carry in AIA / CDP;
* ``dev_pki.anchor`` (the session start, UTC, whole seconds): every validity period is relative
  to it; ``dev_pki.revocation_time`` is when ``revoked`` was revoked (anchor - 30 days);
* ``dev_pki.policy_oids.organisation`` / ``.person``;
* the written bundle: ``dev_pki.layout`` (``.anchor("root")``, ``.intermediate("intermediate")``,
  ``.cert(label)``, ``.key(label)``, ``.p12(label)``, ``.password_file``, ``.manifest``, ...).

Send the header ``gateway.devpki.FAKE_TIME_HEADER`` with an ISO 8601 time to get a time stamp
or an OCSP answer as of that time (e.g. just before the revocation).

Keys are cached across sessions in pytest's cache directory (``.pytest_cache``); certificates
are minted anew each session for the current time, so the tests keep working for years.
Do not modify the PKI's files: the fixture is shared by the whole session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.clock import SystemClock
from gateway.devpki import DevPKI, bind_listener, serve_pki, write_bundle

__all__ = ["KEY_CACHE", "dev_pki"]

KEY_CACHE = "gateway-devpki-keys"
"""Name of the key cache inside pytest's cache directory."""


def _key_cache(config: pytest.Config) -> Path | None:
    # Absent when pytest runs with `-p no:cacheprovider`; then every session makes new keys.
    cache = getattr(config, "cache", None)
    return None if cache is None else Path(cache.mkdir(KEY_CACHE))


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[DevPKI]:
    """The session's development PKI, its bundle written and its services served on loopback."""
    listener = bind_listener("127.0.0.1", 0)
    try:
        port = listener.getsockname()[1]
        directory = tmp_path_factory.mktemp("dev-pki")
        pki = DevPKI.generate(
            directory,
            base_url=f"http://127.0.0.1:{port}",
            anchor=SystemClock().now().replace(microsecond=0),
            key_cache=_key_cache(pytestconfig),
        )
        write_bundle(pki, directory)
    except BaseException:
        listener.close()
        raise
    with serve_pki(pki, listener):
        yield pki
