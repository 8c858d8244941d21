"""``/metrics`` (Prometheus text) and the HTTP app served by ``gateway serve`` on a real socket.

The unit part checks each instrument of ``gateway.metrics.Metrics``; the service part runs the
whole gateway (uvicorn on its event loop), sends it a real package over SMTP, and scrapes
``/metrics`` and calls the API over TCP: the pipeline's counters and histograms moved, the queue
depth is the receipt log's, and tokens are enforced there too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gateway.app.web import serve_web
from gateway.cli.config import load_settings
from gateway.devpki import DevPKI
from gateway.metrics import Metrics
from gateway.settings import HttpSettings
from gateway.store import Spool
from gateway.web.auth import hash_token
from tests.archive.seeded import SeededLog
from tests.service import receipt_log, running, send_mail, until, write_config
from tests.web.apps import bearer, secret, served


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_each_instrument_appears_with_its_labels() -> None:
    metrics = Metrics()
    metrics.verdict("in", "refused", ["pdf-unsigned", "pdf-unsigned", "cert-untrusted"])
    metrics.verdict("in", "accepted")
    metrics.verdict("out", "accepted")
    metrics.verification_seconds.observe(0.3)
    metrics.sealing_seconds.observe(42.0)
    failures = [0]
    metrics.watch(tsa=lambda: failures[0], ocsp=lambda: 2)
    metrics.watch(ocsp=lambda: 3)
    failures[0] = 5
    samples = _samples(metrics.render({("inbound", "delivered"): 7, ("send", "deferred"): 1}).decode())
    assert samples["gateway_messages_total", (("direction", "in"), ("verdict", "refused"))] == 1
    assert samples["gateway_messages_total", (("direction", "in"), ("verdict", "accepted"))] == 1
    assert samples["gateway_messages_total", (("direction", "out"), ("verdict", "accepted"))] == 1
    assert samples["gateway_findings_total", (("code", "pdf-unsigned"),)] == 2
    assert samples["gateway_findings_total", (("code", "cert-untrusted"),)] == 1
    assert samples["gateway_verification_seconds_count", ()] == 1
    assert samples["gateway_verification_seconds_bucket", (("le", "0.5"),)] == 1
    assert samples["gateway_sealing_seconds_bucket", (("le", "30.0"),)] == 0
    assert samples["gateway_sealing_seconds_bucket", (("le", "60.0"),)] == 1
    assert samples["gateway_tsa_errors_total", ()] == 5
    assert samples["gateway_ocsp_errors_total", ()] == 5
    assert samples["gateway_queue_depth", (("kind", "inbound"), ("state", "delivered"))] == 7
    # The gauge is the count of this scrape only: a state that emptied disappears.
    again = _samples(metrics.render({("inbound", "delivered"): 8}).decode())
    assert again["gateway_queue_depth", (("kind", "inbound"), ("state", "delivered"))] == 8
    assert ("gateway_queue_depth", (("kind", "send"), ("state", "deferred"))) not in again


def test_two_registries_never_share_counts() -> None:
    first, second = Metrics(), Metrics()
    first.verdict("in", "accepted")
    assert ("gateway_messages_total", (("direction", "in"), ("verdict", "accepted"))) not in _samples(
        second.render({}).decode()
    )


def test_metrics_need_a_read_token_unless_public_and_count_the_log(seeded_log: SeededLog, tmp_path: Path) -> None:
    db = seeded_log.config.parent / "gateway.db"
    spool = seeded_log.config.parent / "spool"

    async def main(public: bool) -> tuple[int, int, str]:
        async with served(db, spool, metrics_public=public) as (client, deps):
            anonymous = (await client.get("/metrics")).status_code
            answer = await client.get("/metrics", headers=bearer("reader"))
            expected = await deps.store.count_by_state()
            text = answer.text
            for (kind, state), count in expected.items():
                assert f'gateway_queue_depth{{kind="{kind}",state="{state}"}} {float(count)}' in text
            return anonymous, answer.status_code, answer.headers["content-type"]

    anonymous, status, content_type = asyncio.run(main(False))
    assert (anonymous, status) == (401, 200)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert asyncio.run(main(True))[:2] == (200, 200)


def _http(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_gateway_serve_serves_the_app_and_counts_a_real_verdict(
    tmp_path: Path, dev_pki: DevPKI, seeded_log: SeededLog
) -> None:
    """A real package over SMTP, then /metrics, /healthz and the API over TCP (uvicorn on the service's loop)."""
    tokens = tmp_path / "http-tokens"
    tokens.write_text(f"monitor:read:{hash_token(secret('reader'))}\n", encoding="utf-8")
    config = write_config(tmp_path, dev_pki, extra=f'tokens = "{tokens}"\n')

    async def original() -> bytes:
        async with receipt_log(seeded_log.config) as store:
            item = await store.get(seeded_log.ids["valid"])
        assert item is not None
        return await Spool(seeded_log.config.parent / "spool").get(item.sha256)

    mail = asyncio.run(original())

    async def main() -> tuple[dict[str, object], ...]:
        async with running(config) as where:
            code, _ = await send_mail(where.smtp[1], mail)
            assert code == 250

            async def judged() -> bool:
                async with receipt_log(config) as store:
                    return any(i.verdict == "accepted" for i in await store.list(kind="inbound"))

            await until(judged)
            base = f"http://{where.http[0]}:{where.http[1]}"
            scraped = await asyncio.to_thread(_http, f"{base}/metrics", secret("reader"))
            anonymous = await asyncio.to_thread(_http, f"{base}/metrics")
            health = await asyncio.to_thread(_http, f"{base}/healthz")
            search = await asyncio.to_thread(_http, f"{base}/api/v1/messages?direction=in", secret("reader"))
        return (
            {"status": scraped[0], "text": scraped[1].decode()},
            {"status": anonymous[0]},
            {"status": health[0], "body": json.loads(health[1])},
            {"status": search[0], "body": json.loads(search[1])},
        )

    scraped, anonymous, health, search = asyncio.run(main())
    assert scraped["status"] == 200
    samples = _samples(str(scraped["text"]))
    assert samples["gateway_messages_total", (("direction", "in"), ("verdict", "accepted"))] == 1
    assert samples["gateway_verification_seconds_count", ()] == 1
    assert ("gateway_tsa_errors_total", ()) in samples
    assert ("gateway_ocsp_errors_total", ()) in samples
    assert any(name == "gateway_queue_depth" and ("kind", "inbound") in labels for name, labels in samples)
    assert anonymous["status"] == 401
    assert health["status"] == 200
    body = health["body"]
    assert isinstance(body, dict)
    assert body["status"] == "ok"
    assert "policy_sha256" in body
    assert search["status"] == 200
    found = search["body"]
    assert isinstance(found, dict)
    assert [i["verdict"] for i in found["items"]] == ["accepted"]


def test_gateway_web_alone_serves_read_only(seeded_log: SeededLog, tmp_path: Path) -> None:
    """``gateway web``'s composition: the log opened without migrating, the same app, a clean stop."""
    tokens = tmp_path / "http-tokens"
    tokens.write_text(f"a:read:{hash_token(secret('reader'))}\n", encoding="utf-8")
    settings = load_settings(seeded_log.config)
    settings = dataclasses.replace(settings, http=HttpSettings(listen="127.0.0.1:0", tokens=tokens))

    async def main() -> tuple[int, int, dict[str, object]]:
        stop = asyncio.Event()
        bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            serve_web(settings, config_dir=seeded_log.config.parent, stop=stop, ready=bound.set_result)
        )
        host, port = await asyncio.wait_for(bound, 60)
        base = f"http://{host}:{port}"
        try:
            refused = (await asyncio.to_thread(_http, f"{base}/api/v1/messages"))[0]
            status, body = await asyncio.to_thread(_http, f"{base}/api/v1/messages?limit=1", secret("reader"))
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        return refused, status, json.loads(body)

    refused, status, body = asyncio.run(main())
    assert refused == 401
    assert status == 200
    assert len(body["items"]) == 1  # type: ignore[arg-type]
    assert body["next"]
