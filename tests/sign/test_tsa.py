"""The TSA client: deadlines, retries with backoff, the concurrency cap, and "no token, no seal".

The real TSA is the dev PKI's (served on loopback). ``_Relay`` stands in front of it on another
loopback port, on the test's own event loop, to make it slow, failing or silent on demand and
to count the requests in flight; a port with nothing listening is a TSA that is down.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from asn1crypto import cms

from gateway.devpki import DevPKI
from gateway.sign.pdfseal import SealKind, SealRequest
from gateway.sign.tsa import TsaClient, TsaUnavailable
from tests.pdfs import phu_luc, run
from tests.sign.conftest import ORGANISATION, sealing

DIGEST = bytes(32)


@dataclass
class _Relay:
    """A loopback TSA relay: delays, then fails (HTTP 503) or forwards to the real TSA."""

    upstream: str
    delay: float = 0.0
    fail: int = 0
    """How many requests (after ``pass_first``) get HTTP 503 instead of a token."""
    pass_first: int = 0
    """How many requests are forwarded before the failures start."""
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    url: str = ""
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        number = self.requests
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.read()
            await asyncio.sleep(self.delay)
            if self.pass_first < number <= self.pass_first + self.fail:
                return web.Response(status=503, text="busy")
            assert self._session is not None
            async with self._session.post(
                self.upstream, data=body, headers={"Content-Type": "application/timestamp-query"}
            ) as answer:
                return web.Response(body=await answer.read(), content_type="application/timestamp-reply")
        finally:
            self.in_flight -= 1


@asynccontextmanager
async def _relay(pki: DevPKI, **behaviour: float) -> AsyncIterator[_Relay]:
    relay = _Relay(pki.urls.tsa, **behaviour)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_post("/", relay.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    relay.url = f"http://{host}:{port}/"
    relay._session = aiohttp.ClientSession()
    try:
        yield relay
    finally:
        await relay._session.close()
        await runner.cleanup()


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/"


async def _token(client: TsaClient) -> cms.ContentInfo:
    return await client.timestamper.async_timestamp(DIGEST, "sha256")


def test_a_tsa_that_is_down_is_retried_then_unavailable() -> None:
    url = _closed_port()

    async def go() -> tuple[TsaUnavailable, float, int]:
        client = TsaClient(url, timeout=1.0, attempts=3, concurrency=2, backoff=0.1)
        started = time.monotonic()
        try:
            with pytest.raises(TsaUnavailable) as caught:
                await _token(client)
            return caught.value, time.monotonic() - started, client.stats.requests
        finally:
            await client.aclose()

    error, elapsed, requests = run(go())
    assert requests == 3
    assert 0.3 <= elapsed < 1.5  # backoffs 0.1 + 0.2; refused connections fail at once
    assert error.code == "tsa-unavailable"
    assert error.attempts == 3
    assert f"{url} failed 3 attempt(s)" in str(error)
    assert "Cannot connect" in str(error) or "Connect" in str(error)


def test_a_silent_tsa_costs_one_deadline_per_attempt() -> None:
    # A listener that never accepts: the request is sent into the backlog and never answered.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"

        async def go() -> tuple[str, float]:
            client = TsaClient(url, timeout=0.3, attempts=2, concurrency=1, backoff=0.05)
            started = time.monotonic()
            try:
                with pytest.raises(TsaUnavailable) as caught:
                    await _token(client)
                return str(caught.value), time.monotonic() - started
            finally:
                await client.aclose()

        message, elapsed = run(go())
    assert 0.6 <= elapsed < 1.5  # 2 attempts x 0.3 s + 0.05 s backoff
    assert "no answer within 0.3 s" in message


def test_a_busy_tsa_is_retried_until_it_answers(dev_pki: DevPKI) -> None:
    async def go() -> tuple[int, int]:
        async with _relay(dev_pki, fail=2) as relay:
            client = TsaClient(relay.url, timeout=5.0, attempts=3, concurrency=1, backoff=0.01)
            try:
                token = await _token(client)
            finally:
                await client.aclose()
            assert token["content_type"].native == "signed_data"
            return relay.requests, client.stats.failures

    assert run(go()) == (3, 2)


def test_at_most_concurrency_requests_are_in_flight(dev_pki: DevPKI) -> None:
    async def go() -> tuple[int, int, float]:
        async with _relay(dev_pki, delay=0.2) as relay:
            client = TsaClient(relay.url, timeout=5.0, attempts=1, concurrency=3)
            started = time.monotonic()
            try:
                await asyncio.gather(*(_token(client) for _ in range(9)))
            finally:
                await client.aclose()
            return relay.max_in_flight, client.stats.max_in_flight, time.monotonic() - started

    at_relay, counted, elapsed = run(go())
    assert at_relay == counted == 3
    assert elapsed >= 0.6  # three waves of three 200 ms answers


def test_no_token_no_seal(dev_pki: DevPKI) -> None:
    """The TSA answers the sizing request, then fails the real one: nothing is produced."""
    request = SealRequest(SealKind.ATTACHMENT, ORGANISATION, document_number="123/UBND-VP")

    async def go() -> tuple[TsaUnavailable, int]:
        async with _relay(dev_pki, pass_first=1, fail=10) as relay:
            client = TsaClient(relay.url, timeout=5.0, attempts=2, concurrency=2, backoff=0.01)
            try:
                async with sealing(dev_pki, tsa=client) as sealer:
                    with pytest.raises(TsaUnavailable) as caught:
                        await sealer.seal_document(phu_luc(), request)
            finally:
                await client.aclose()
            return caught.value, relay.requests

    error, requests = run(go())
    assert requests == 3  # the sizing token, then two failed attempts for the signature's token
    assert "HTTP" in str(error) or "503" in str(error) or "contacting" in str(error)


def test_a_sealer_with_its_tsa_down_refuses_to_wait_forever(dev_pki: DevPKI) -> None:
    request = SealRequest(SealKind.ATTACHMENT, ORGANISATION, document_number="123/UBND-VP")
    client = TsaClient(_closed_port(), timeout=0.5, attempts=2, concurrency=1, backoff=0.05)

    async def go() -> None:
        try:
            async with sealing(dev_pki, tsa=client) as sealer:
                await sealer.seal_document(phu_luc(), request)
        finally:
            await client.aclose()

    started = time.monotonic()
    with pytest.raises(TsaUnavailable, match="failed 2 attempt"):
        run(go())
    assert time.monotonic() - started < 5


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        TsaClient("http://tsa.example/", timeout=0, attempts=1, concurrency=1)
    with pytest.raises(ValueError, match="must be positive"):
        TsaClient("http://tsa.example/", timeout=1, attempts=0, concurrency=1)
