"""The three certvalidator fetchers of one check: OCSP responders, CRL URLs, caIssuers URLs.

A *check* is one certificate judged at one time (``gateway.verify.chain``). Its fetchers share
a ``Check``: the deadline, certvalidator's request budget (``FetchLimits``: a hostile chain
cannot make us fetch without end) and the cache keys served. Within a check an answer or a
failure is remembered per key; across checks only ``HttpFetchers``'s cache persists, under
the rules in ``gateway.verify.fetch``. Every failure is the error type certvalidator expects
(``OCSPFetchError``, ``CRLFetchError``, ``CertificateFetchError``), i.e. "no answer".
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Hashable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from asn1crypto import crl as asn1_crl
from asn1crypto import pem
from pyhanko_certvalidator import errors as cv_errors
from pyhanko_certvalidator.authority import Authority
from pyhanko_certvalidator.fetchers.api import CertificateFetcher, CRLFetcher, FetchLimits, OCSPFetcher
from pyhanko_certvalidator.fetchers.common_utils import (
    FetchBudget,
    FetchKind,
    cap_aia_urls,
    complete_certificate_fetch_jobs,
    enumerate_delivery_point_urls,
    format_ocsp_request,
    gather_aia_issuer_urls,
    process_ocsp_response_data,
    unpack_cert_content,
)
from pyhanko_certvalidator.util import get_ocsp_urls, get_relevant_crl_dps, issuer_serial

if TYPE_CHECKING:
    from gateway.verify.fetch import HttpFetchers

__all__ = ["CRLSource", "CertSource", "Check", "OCSPSource"]

_CERT_TYPES = "application/pkix-cert,application/pkcs7-mime,application/x-x509-ca-cert,application/octet-stream"
_OCSP_HEADERS = {"Accept": "application/ocsp-response", "Content-Type": "application/ocsp-request"}


class Check:
    """The deadline and request budget of one check, shared by its three fetchers."""

    def __init__(self, request_timeout: float, total_timeout: float) -> None:
        self.request_timeout = request_timeout
        self.deadline = time.monotonic() + total_timeout
        self.budget = FetchBudget(FetchLimits())
        self.served: set[Hashable] = set()
        """Cache keys this check used (``HttpFetchers.evict`` drops them)."""

    def timeout(self, kind: FetchKind) -> float:
        """Seconds the next request may take; raises ``kind``'s error once the deadline passed."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise kind.value("the deadline for fetching revocation data has passed")
        return min(self.request_timeout, remaining)


def _earliest_next_update(response: Any) -> datetime | None:
    updates = [
        single["next_update"].native for single in response.basic_ocsp_response["tbs_response_data"]["responses"]
    ]
    return None if not updates or any(u is None for u in updates) else min(updates)


class OCSPSource(OCSPFetcher):
    """OCSP for one check, keyed by (issuer name + serial, issuer key)."""

    def __init__(self, owner: HttpFetchers, check: Check) -> None:
        self._owner = owner
        self.check = check
        self._served: dict[tuple[str, bytes, bytes], Any] = {}
        self._failed: dict[tuple[str, bytes, bytes], Exception] = {}

    async def fetch(self, cert: Any, authority: Authority) -> Any:
        key = ("ocsp", issuer_serial(cert), authority.public_key.sha256)
        if key in self._served:
            return self._served[key]
        if key in self._failed:
            raise self._failed[key]
        response = self._owner.cached(key, "ocsp")
        if response is None:
            try:
                response = await self._owner.shared(
                    key, FetchKind.OCSP, self.check, lambda: self._network(cert, authority)
                )
            except cv_errors.OCSPFetchError as exc:
                self._failed[key] = exc
                raise
            self._owner.store(key, response, _earliest_next_update(response))
        self.check.served.add(key)
        self._served[key] = response
        return response

    async def _network(self, cert: Any, authority: Authority) -> Any:
        urls = get_ocsp_urls(cert)
        if not urls:
            raise cv_errors.OCSPFetchError("the certificate names no OCSP responder")
        request = format_ocsp_request(cert, authority, certid_hash_algo="sha1", request_nonces=True)
        failures = []
        for url in urls:
            try:
                data, _ = await self._owner.request(
                    self.check, FetchKind.OCSP, url, body=request.dump(), headers=_OCSP_HEADERS
                )
                return process_ocsp_response_data(data, ocsp_request=request, ocsp_url=url)
            except cv_errors.OCSPValidationError as exc:  # an error status (tryLater...) or a fetch error
                failures.append(str(exc))
        raise cv_errors.OCSPFetchError("; ".join(failures))

    def fetched_responses(self) -> Iterable[Any]:
        return list(self._served.values())

    def fetched_responses_for_cert(self, cert: Any) -> Iterable[Any]:
        wanted = issuer_serial(cert)
        return [response for key, response in self._served.items() if key[1] == wanted]


class CRLSource(CRLFetcher):
    """CRLs for one check, each URL cached on its own."""

    def __init__(self, owner: HttpFetchers, check: Check) -> None:
        self._owner = owner
        self.check = check
        self._by_cert: dict[bytes, list[Any]] = {}
        self._failed: dict[str, Exception] = {}

    async def fetch(self, cert: Any, *, use_deltas: bool | None = None) -> Iterable[Any]:
        wanted = issuer_serial(cert)
        if wanted in self._by_cert:
            return self._by_cert[wanted]
        points = get_relevant_crl_dps(cert, use_deltas=use_deltas is not False)
        urls = dict.fromkeys(url for point in points for url in enumerate_delivery_point_urls(point))
        found: list[Any] = []
        failure: Exception | None = None
        for url in urls:
            try:
                found.append(await self._one(url))
            except cv_errors.CRLFetchError as exc:
                failure = exc
        if failure is not None and not found:
            raise failure
        self._by_cert[wanted] = found
        return found

    async def _one(self, url: str) -> Any:
        if url in self._failed:
            raise self._failed[url]
        key = ("crl", url)
        certificate_list = self._owner.cached(key, "crl")
        if certificate_list is None:
            try:
                certificate_list = await self._owner.shared(key, FetchKind.CRL, self.check, lambda: self._network(url))
            except cv_errors.CRLFetchError as exc:
                self._failed[url] = exc
                raise
            self._owner.store(key, certificate_list, certificate_list["tbs_cert_list"]["next_update"].native)
        self.check.served.add(key)
        return certificate_list

    async def _network(self, url: str) -> Any:
        data, _ = await self._owner.request(self.check, FetchKind.CRL, url, headers={"Accept": "application/pkix-crl"})
        if pem.detect(data):  # some CAs (NEAC among them, spec §5) serve PEM-armoured CRLs
            _, _, data = pem.unarmor(data)
        try:
            certificate_list = asn1_crl.CertificateList.load(data)
            certificate_list["tbs_cert_list"]["next_update"].native  # noqa: B018 - parse now: fail here, not later
        except ValueError as exc:
            raise cv_errors.CRLFetchError(f"the answer from {url} is not a CRL: {exc}") from exc
        return certificate_list

    def fetched_crls(self) -> Iterable[Any]:
        unique = {id(c): c for found in self._by_cert.values() for c in found}
        return list(unique.values())

    def fetched_crls_for_cert(self, cert: Any) -> Iterable[Any]:
        return self._by_cert[issuer_serial(cert)]  # KeyError: not fetched yet (the API's contract)


class CertSource(CertificateFetcher):
    """Issuer certificates from AIA caIssuers URLs: untrusted path-building material."""

    def __init__(self, owner: HttpFetchers, check: Check) -> None:
        self._owner = owner
        self.check = check
        self._served: dict[str, list[Any]] = {}

    async def _fetch_certs(self, url: str) -> list[Any]:
        if url in self._served:
            return self._served[url]
        key = ("cert", url)
        certs = self._owner.cached(key, "cert")
        if certs is None:
            certs = await self._owner.shared(key, FetchKind.CERT, self.check, lambda: self._network(url))
            self._owner.store(key, certs, None, max_age=self._owner.policy.certificate_max_age)
        self._served[url] = certs
        return list(certs)

    async def _network(self, url: str) -> list[Any]:
        data, content_type = await self._owner.request(self.check, FetchKind.CERT, url, headers={"Accept": _CERT_TYPES})
        try:
            return list(unpack_cert_content(data, content_type, url, permit_pem=True))
        except ValueError as exc:
            raise cv_errors.CertificateFetchError(f"no certificate in the answer from {url}: {exc}") from exc

    def fetch_cert_issuers(self, cert: Any) -> AsyncGenerator[Any, None]:
        urls = cap_aia_urls(self.check.budget, gather_aia_issuer_urls(cert))
        jobs = [self._fetch_certs(url) for url in urls]
        return cast(AsyncGenerator[Any, None], complete_certificate_fetch_jobs(jobs))  # type: ignore[no-untyped-call]

    def fetch_crl_issuers(self, certificate_list: Any) -> AsyncGenerator[Any, None]:
        urls = cap_aia_urls(self.check.budget, certificate_list.issuer_cert_urls)
        jobs = [self._fetch_certs(url) for url in urls]
        return cast(AsyncGenerator[Any, None], complete_certificate_fetch_jobs(jobs))  # type: ignore[no-untyped-call]

    def fetched_certs(self) -> Iterable[Any]:
        return [cert for certs in self._served.values() for cert in certs]
