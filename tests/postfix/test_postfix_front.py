"""Real Postfix in front of the gateway, both directions (issue 7), configured from README.md.

The gateway runs in-process on the test's event loop (``tests.service.running``: real listeners,
store, spool and pipeline); Postfix runs as throw-away instances (``tests.postfix.harness``); the
axis is a capturing SMTP sink. Every Postfix and gateway setting that a deployment needs is read
from the README's deployment section (the fenced blocks after ``<!-- postfix-test: NAME -->``),
with only the ports replaced, so the README and this test cannot drift apart:

* inbound: the axis sends to the agency's MX (Postfix); its after-queue ``content_filter`` hands
  the mail to the gateway's ``[smtp]`` listener; an accepted package comes back on the
  re-injection listener and Postfix's ``virtual(8)`` puts it in the DMS mailbox (a Maildir);
  the gateway's status packages (01, 02) leave through the same listener and Postfix relays them
  to the axis (its ``relayhost``);
* outbound: the DMS's own Postfix has the gateway's submission port as its ``relayhost``; the
  gateway seals the draft and sends it through the MX to the axis.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from gateway.app import open_sealing
from gateway.cli.config import load_settings
from gateway.clock import SystemClock
from gateway.devpki import DevPKI
from gateway.devpki.demo import Sample, make_samples, sample_mail
from gateway.edxml.model import DocumentPackage
from gateway.edxml.parse import parse
from gateway.pipeline.mails import find_package
from gateway.settings import IdentitySettings
from gateway.verify.package import Verifier, verify_package
from gateway.verify.pdf import Examiner
from gateway.verify.report import Verdict
from tests.pdfs import SignedPdfs
from tests.pipeline.test_submission import RECIPIENT, draft_mail, draft_package
from tests.postfix.harness import PostfixInstance, header, parse_main_cf
from tests.service import OUR_MAIL, OURS, PARTNER_MAIL, running, send_mail, status_of, until, work_items, write_config
from tests.sign.conftest import policy_for, trust_store
from tests.smtpsink import Captured, SmtpSink, free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

README = Path(__file__).resolve().parents[2] / "README.md"
TAMPERED_CODES = {"pdf-signature-invalid", "pdf-modified-after-signing"}
DMS_SENDER = "vanthu@dms.tayninh.gov.vn"
PEER = "vanthu@chauthanh.gov.vn"
"""The recipient agency of the outbound draft (``RECIPIENT`` in the directory of test_submission)."""

# The ports the README's snippets use; each is replaced by the test's own.
GATEWAY_SMTP, GATEWAY_SUBMISSION, REINJECTION = 2525, 5870, 10026


# ---------------------------------------------------------------------- the README's snippets
def readme_block(name: str) -> str:
    """The fenced block right after ``<!-- postfix-test: NAME -->`` in README.md.

    Raises:
        AssertionError: no such marker, or no fenced block follows it.
    """
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^<!-- postfix-test: {re.escape(name)} -->\n+```[a-z]*\n(.*?)^```$", text, re.M | re.S)
    assert match, f"README.md has no fenced block after <!-- postfix-test: {name} -->"
    return match.group(1)


def at_ports(text: str, ports: Mapping[int, int]) -> str:
    """``text`` with each loopback port (``127.0.0.1:P``, ``[127.0.0.1]:P``) replaced by ``ports[P]``.

    Raises:
        AssertionError: a snippet names a loopback port the test does not know (it would not be tested).
    """

    def replace(match: re.Match[str]) -> str:
        port = int(match.group(2))
        assert port in ports, f"README snippet uses port {port}; the test knows {sorted(ports)}"
        return f"{match.group(1)}{ports[port]}"

    return re.sub(r"(127\.0\.0\.1\]?:)(\d+)\b", replace, text)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def apply_toml(config: Path, tables: Mapping[str, Mapping[str, Any]]) -> None:
    """Set every ``[table] key`` of ``tables`` in the flat ``gateway.toml`` that ``write_config`` wrote."""
    lines = config.read_text(encoding="utf-8").splitlines()
    for table, keys in tables.items():
        start = lines.index(f"[{table}]") + 1
        end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
        for key, value in keys.items():
            line = f"{key} = {_toml_value(value)}"
            found = [i for i in range(start, end) if lines[i].split("=", 1)[0].strip() == key]
            if found:
                lines[found[0]] = line
            else:
                lines.insert(start, line)
                end += 1
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def gateway_config(tmp_path: Path, pki: DevPKI, *, reinjection: int, inline_verdict_seconds: float = 0.0) -> Path:
    """``write_config`` plus every key of the README's ``gateway.toml`` blocks (listeners on ephemeral ports)."""
    ports = {GATEWAY_SMTP: 0, GATEWAY_SUBMISSION: 0, REINJECTION: reinjection}
    config = write_config(tmp_path, pki, inline_verdict_seconds=inline_verdict_seconds)
    for block in ("gateway.toml (inbound)", "gateway.toml (submission)"):
        apply_toml(config, tomllib.loads(at_ports(readme_block(block), ports)))
    return config


def mx_instance(gateway_smtp: int, reinjection: int, axis: int, *, variant: str) -> PostfixInstance:
    """The agency's MX from the README (``variant``: which main.cf block), relaying to the axis sink."""
    ports = {GATEWAY_SMTP: gateway_smtp, REINJECTION: reinjection}
    main = parse_main_cf(at_ports(readme_block(variant), ports))
    main["relayhost"] = f"[127.0.0.1]:{axis}"  # stands in for the agency's own relayhost or MX lookup
    services = at_ports(readme_block("mx master.cf"), ports)
    return PostfixInstance("mx", main=main, services=services, mailboxes=(OUR_MAIL,))


def dms_instance(gateway_submission: int) -> PostfixInstance:
    """The DMS's own Postfix from the README: the gateway's submission port is its relayhost."""
    main = parse_main_cf(at_ports(readme_block("dms main.cf"), {GATEWAY_SUBMISSION: gateway_submission}))
    return PostfixInstance("dms", main=main)


async def start(instance: PostfixInstance, instances: list[PostfixInstance]) -> PostfixInstance:
    """Start ``instance`` off the event loop (the gateway runs on it) and register it for teardown."""
    instances.append(instance)
    await asyncio.to_thread(instance.start)
    return instance


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def samples(dev_pki: DevPKI, tmp_path_factory: pytest.TempPathFactory) -> tuple[Sample, Sample, Sample]:
    """The ``gateway demo`` packages (valid, tampered, unsigned), signed with the session's PKI."""
    settings = load_settings(write_config(tmp_path_factory.mktemp("samples"), dev_pki))

    async def make() -> tuple[Sample, Sample, Sample]:
        async with open_sealing(settings) as sealing:
            return await make_samples(dev_pki, sealing.documents, sealing.key, to=OURS, clock=SystemClock())

    return asyncio.run(make())


def _document_id(captured: Captured) -> str | None:
    return status_of(captured).response_for.document_id


# ---------------------------------------------------------------------- inbound
@pytest.mark.parametrize("variant", ["mx main.cf", "mx main.cf (shared)"], ids=["content_filter", "FILTER"])
def test_postfix_hands_axis_mail_to_the_gateway_and_delivers_what_it_accepts(
    tmp_path: Path,
    dev_pki: DevPKI,
    samples: tuple[Sample, Sample, Sample],
    postfix_instances: list[PostfixInstance],
    variant: str,
) -> None:
    """A1–A10 behind Postfix: the valid package reaches the DMS mailbox, the tampered one gets status 02.

    Postfix queues both (250 from its smtpd), hands each to the gateway as an after-queue content
    filter, and removes it from its queue only on the gateway's 250; the status packages travel
    back out through Postfix to the axis with the refusal's code intact (A8).
    """
    valid, tampered, _ = samples

    async def go() -> None:
        async with SmtpSink() as axis:
            reinjection = free_port()
            config = gateway_config(tmp_path, dev_pki, reinjection=reinjection)
            async with running(config) as where:
                mx = await start(mx_instance(where.smtp[1], reinjection, axis.port, variant=variant), postfix_instances)
                for sample in (valid, tampered):
                    mail, _ = sample_mail(sample, to=OUR_MAIL, at=SystemClock().now())
                    code, reply = await send_mail(mx.port, mail, mail_from=PARTNER_MAIL)
                    assert code == 250, reply  # Postfix's own smtpd queued it

                async def settled() -> bool:
                    delivered = await asyncio.to_thread(mx.maildir, OUR_MAIL)
                    return len(delivered) == 1 and len(axis.messages) == 2 and not await asyncio.to_thread(mx.queue)

                await until(settled, within=120)
            inbound = {item.document_id: item for item in await work_items(config, "inbound")}

        assert (inbound[valid.document_id].state, inbound[valid.document_id].verdict) == ("delivered", "accepted")
        assert (inbound[tampered.document_id].state, inbound[tampered.document_id].verdict) == ("refused", "refused")
        for item in inbound.values():  # each reached the gateway through Postfix, not straight from the client
            assert item.rcpt_to == (OUR_MAIL,)
            assert item.mail_from == PARTNER_MAIL

        [delivered] = mx.maildir(OUR_MAIL)
        assert find_package(delivered).package == valid.package  # the signed bytes, untouched
        assert header(delivered, "X-Gateway-Verdict") == "accepted"
        hops = email.message_from_bytes(delivered, policy=email.policy.default).get_all("Received") or []
        assert len([hop for hop in hops if "mx.test" in str(hop)]) >= 2  # in from the axis, back from the gateway

        statuses = {_document_id(captured): captured for captured in axis.messages}
        assert all(captured.rcpt_to == (PARTNER_MAIL,) for captured in axis.messages)
        assert status_of(statuses[valid.document_id]).status_code == "01"
        refusal = status_of(statuses[tampered.document_id])
        assert refusal.status_code == "02"
        assert any(code in (refusal.description or "") for code in TAMPERED_CODES), refusal.description
        assert "mx.test" in (header(statuses[tampered.document_id].data, "Received") or "")  # relayed by the MX

        log = mx.log_text()
        gateway_hop = f"relay=127.0.0.1[127.0.0.1]:{where.smtp[1]}"
        assert log.count(gateway_hop) == 2, log
        assert "status=sent (250 2.0.0 Ok: queued as" in log, log

    asyncio.run(go())


def test_an_inline_refusal_comes_back_as_postfix_bounce_naming_the_code(
    tmp_path: Path, dev_pki: DevPKI, samples: tuple[Sample, Sample, Sample], postfix_instances: list[PostfixInstance]
) -> None:
    """A8 inline: ``550 5.7.1 <code>`` makes Postfix bounce to the sender, and the status 02 follows too."""
    _, tampered, _ = samples

    async def go() -> None:
        async with SmtpSink() as axis:
            reinjection = free_port()
            config = gateway_config(tmp_path, dev_pki, reinjection=reinjection, inline_verdict_seconds=60)
            async with running(config) as where:
                mx = await start(
                    mx_instance(where.smtp[1], reinjection, axis.port, variant="mx main.cf"), postfix_instances
                )
                mail, _ = sample_mail(tampered, to=OUR_MAIL, at=SystemClock().now())
                code, reply = await send_mail(mx.port, mail, mail_from=PARTNER_MAIL)
                assert code == 250, reply

                async def answered() -> bool:
                    return len(axis.messages) == 2 and not await asyncio.to_thread(mx.queue)

                await until(answered, within=120)
            [item] = await work_items(config, "inbound")

        assert (item.state, item.verdict) == ("refused", "refused")
        assert mx.maildir(OUR_MAIL) == []
        assert all(captured.rcpt_to == (PARTNER_MAIL,) for captured in axis.messages)
        [bounce] = [c for c in axis.messages if c.mail_from in ("", "<>")]  # Postfix's DSN: null sender
        text = bounce.data.decode("utf-8", "replace")
        assert "550 5.7.1" in text, text
        assert any(code in text for code in TAMPERED_CODES), text
        [notice] = [c for c in axis.messages if c.mail_from == OUR_MAIL]
        status = status_of(notice)
        assert status.status_code == "02"
        assert any(code in (status.description or "") for code in TAMPERED_CODES)
        log = mx.log_text()
        assert "status=bounced" in log, log
        assert "said: 550 5.7.1" in log, log

    asyncio.run(go())


# ---------------------------------------------------------------------- outbound
async def _recipient_verdict(pki: DevPKI, package: bytes) -> Verdict:
    """How the recipient agency's gateway judges the package (its OrganId, the same trust anchors)."""
    examiner = Examiner(trust_store(pki), SystemClock())
    verifier = Verifier(examiner, policy_for(pki), identity=IdentitySettings(organ_ids=(RECIPIENT,)))
    try:
        report = await verify_package(package, verifier)
    finally:
        await examiner.aclose()
    assert report.verdict is Verdict.ACCEPTED, report.findings
    return report.verdict


def test_the_dms_postfix_relays_through_the_gateway_which_sends_through_the_mx(
    tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs, postfix_instances: list[PostfixInstance]
) -> None:
    """B1–B8 behind Postfix: DMS → its Postfix (relayhost = gateway) → sealed → MX → axis, verifiable."""
    draft = draft_package(signed_pdfs.person_only)
    captured: list[Captured] = []

    async def go() -> None:
        async with SmtpSink() as axis:
            reinjection = free_port()
            config = gateway_config(tmp_path, dev_pki, reinjection=reinjection)
            async with running(config) as where:
                mx = await start(
                    mx_instance(where.smtp[1], reinjection, axis.port, variant="mx main.cf"), postfix_instances
                )
                dms = await start(dms_instance(where.submission[1]), postfix_instances)
                client = aiosmtplib.SMTP(hostname="127.0.0.1", port=dms.port, timeout=60)
                await client.connect()
                await client.sendmail(DMS_SENDER, [PEER], draft_mail(draft))
                await client.quit()

                async def sent() -> bool:
                    if not axis.messages:
                        return False
                    queues = await asyncio.gather(asyncio.to_thread(mx.queue), asyncio.to_thread(dms.queue))
                    return not any(queues)

                await until(sent, within=180)
            captured.extend(axis.messages)
            sends = await work_items(config, "send")
            submissions = await work_items(config, "submission")

        [relayed] = captured
        assert relayed.rcpt_to == (PEER,)
        package = find_package(relayed.data).package
        assert package is not None
        assert package != draft
        parsed = parse(package).package
        assert isinstance(parsed, DocumentPackage)
        assert parsed.header.to[0].organ_id == RECIPIENT
        hops = " ".join(str(h) for h in email.message_from_bytes(relayed.data).get_all("Received") or [])
        assert "mx.test" in hops  # the sealed package left through the MX
        [submission] = submissions
        assert submission.state == "sealed"
        assert submission.mail_from == DMS_SENDER
        [send] = sends
        assert send.state == "sent"
        assert send.sent_at is not None
        assert send.recipient == PEER
        assert "relay=127.0.0.1[127.0.0.1]" in dms.log_text()
        assert "status=sent" in dms.log_text()
        await _recipient_verdict(dev_pki, package)  # the recipient agency accepts it: every signature verifies

    asyncio.run(go())
