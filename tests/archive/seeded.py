"""A receipt log seeded by running real packages through the real gateway, once per session.

``seeded_log`` (session scope) writes a gateway configuration on the session's development PKI
(``tests.service.write_config``), adds a second partner agency to its directory, builds sample
packages with ``gateway.devpki.demo`` (person-signed and organisation-sealed PDFs, RFC 3161 time
stamps from the development TSA, XMLDSig envelopes), runs the gateway in-process
(``tests.service.running``: real SMTP listener, pipeline, SQLite store and spool, Maildir DMS and
axis), sends each package over SMTP as the axis would, waits until every inbound item and its
status notice are finished, stops the gateway and returns a ``SeededLog``.

The names are stable (tests and other fixtures look items up by them):

``valid``
    From ``PARTNER`` (000.00.00.G22, Văn phòng Chính phủ): signed, sealed, envelope signed.
    Accepted and delivered.
``valid-2``
    The same kind of package from a second agency, ``PARTNER_2`` (000.00.00.G09, Bộ Tài chính,
    ``vanthu@mof.gov.vn``), which the directory knows too. Accepted and delivered.
``no-envelope``
    The valid PDF in a package of ``PARTNER`` (its own DocumentId, number 104) whose envelope
    carries no XMLDSig signature. ``envelope-signature-absent`` is ``ignore`` in the default
    policy, so it is accepted and delivered; a policy that rejects that code refuses it.
``tampered``
    From ``PARTNER``: signed and sealed, then its amount changed in place. Refused
    (``pdf-signature-invalid`` / ``pdf-modified-after-signing``).
``unsigned``
    From ``PARTNER``: the same letter without any signature. Refused (``pdf-unsigned``).

``SeededLog.ids`` maps each name to its inbound work item id, ``SeededLog.documents`` to its
DocumentId. The gateway is stopped when the fixture returns: nothing writes to the log any more,
so a test may compare it before and after a read-only tool. Do not write to it either (it is
shared by the whole session); copy ``config.parent`` first if a test must.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.app import open_sealing
from gateway.cli.config import load_settings
from gateway.clock import SystemClock
from gateway.devpki import DevPKI
from gateway.devpki.demo import PARTNER, Partner, Sample, make_samples, sample_mail
from gateway.edxml.build import build
from gateway.edxml.model import DocumentCode, DocumentPackage
from gateway.edxml.parse import parse
from gateway.store import TERMINAL, MessageView
from tests.service import OUR_MAIL, OURS, queued_id, receipt_log, running, send_mail, until, write_config

__all__ = ["NAMES", "PARTNER_2", "SeededLog", "seeded_log"]

PARTNER_2 = Partner(organ_id="000.00.00.G09", name="Bộ Tài chính", mail="vanthu@mof.gov.vn")
"""The second sending agency (in the seeded gateway's directory next to ``PARTNER``)."""
NAMES = ("valid", "valid-2", "no-envelope", "tampered", "unsigned")
"""Every seeded package, in the order it is sent."""

_NO_ENVELOPE_NUMBER = "104"


@dataclass(frozen=True)
class SeededLog:
    """A stopped gateway's configuration and what was put through it."""

    config: Path
    """The gateway.toml; its directory holds gateway.db, spool/, dms/, axis/, directory.toml."""
    ids: dict[str, int]
    """Seeded name → inbound work item id."""
    pki: DevPKI
    """The development PKI the packages were signed with (the session's ``dev_pki``)."""
    documents: dict[str, str]
    """Seeded name → DocumentId."""


def _without_envelope(valid: Sample) -> Sample:
    """The valid sample's PDF in a package of its own DocumentId, its envelope left unsigned."""
    parsed = parse(valid.package).package
    assert isinstance(parsed, DocumentPackage)
    number = parsed.header.code.number
    document_id = valid.document_id.replace(f",{number}/", f",{_NO_ENVELOPE_NUMBER}/")
    header = dataclasses.replace(
        parsed.header,
        code=DocumentCode(_NO_ENVELOPE_NUMBER, parsed.header.code.notation),
        document_id=document_id,
    )
    package = build(dataclasses.replace(parsed, header=header))
    description = "the valid letter in a package whose envelope is not signed"
    return dataclasses.replace(valid, description=description, document_id=document_id, package=package)


def _add_partner(config: Path, partner: Partner) -> None:
    directory = config.parent / "directory.toml"
    entry = f'\n[[agency]]\norgan_id = "{partner.organ_id}"\nname = "{partner.name}"\nmail = ["{partner.mail}"]\n'
    directory.write_text(directory.read_text(encoding="utf-8") + entry, encoding="utf-8")


async def _samples(config: Path, pki: DevPKI) -> dict[str, tuple[Sample, Partner]]:
    clock = SystemClock()
    async with open_sealing(load_settings(config), clock=clock) as sealing:
        valid, tampered, unsigned = await make_samples(pki, sealing.documents, sealing.key, to=OURS, clock=clock)
        valid_2, _, _ = await make_samples(pki, sealing.documents, sealing.key, to=OURS, clock=clock, partner=PARTNER_2)
    return {
        "valid": (valid, PARTNER),
        "valid-2": (valid_2, PARTNER_2),
        "no-envelope": (_without_envelope(valid), PARTNER),
        "tampered": (tampered, PARTNER),
        "unsigned": (unsigned, PARTNER),
    }


def _finished(item: MessageView | None, notices: list[MessageView]) -> bool:
    if item is None or item.state not in TERMINAL["inbound"]:
        return False
    return bool(notices) and all(n.state in TERMINAL["notice"] for n in notices)


async def _seed(config: Path, samples: dict[str, tuple[Sample, Partner]]) -> dict[str, int]:
    ids: dict[str, int] = {}
    async with running(config) as where:
        for name in NAMES:
            sample, partner = samples[name]
            mail, _ = sample_mail(sample, to=OUR_MAIL, at=SystemClock().now(), partner=partner)
            bounces = "bounces@" + partner.mail.rpartition("@")[2]
            code, reply = await send_mail(where.smtp[1], mail, mail_from=bounces)
            assert code == 250, f"{name}: {code} {reply}"
            ids[name] = queued_id(reply)

        async def settled() -> bool:
            async with receipt_log(config) as store:
                for id in ids.values():
                    if not _finished(await store.get(id), await store.list(kind="notice", parent_id=id)):
                        return False
            return True

        await until(settled, within=120)
    return ids


def _check(seeded: SeededLog) -> None:
    """Fail the session early, naming the item, if a package did not end as the docstring says."""

    async def read() -> dict[str, MessageView]:
        async with receipt_log(seeded.config) as store:
            found = {name: await store.get(id) for name, id in seeded.ids.items()}
        return {name: item for name, item in found.items() if item is not None}

    items = asyncio.run(read())
    expected = {"valid": "accepted", "valid-2": "accepted", "no-envelope": "accepted"}
    for name in NAMES:
        item = items[name]
        codes = sorted(str(f["code"]) for f in item.findings or ())
        want = expected.get(name, "refused")
        assert item.verdict == want, f"seeded {name!r}: verdict {item.verdict} ({codes}), expected {want}"
        assert item.document_id == seeded.documents[name], f"seeded {name!r}: DocumentId {item.document_id}"
    assert seeded.documents["no-envelope"] != seeded.documents["valid"]


@pytest.fixture(scope="session")
def seeded_log(tmp_path_factory: pytest.TempPathFactory, dev_pki: DevPKI) -> SeededLog:
    """The session's seeded receipt log (see the module docstring for what is in it)."""
    directory = tmp_path_factory.mktemp("seeded-log")
    config = write_config(directory, dev_pki)
    _add_partner(config, PARTNER_2)
    samples = asyncio.run(_samples(config, dev_pki))
    documents = {name: sample.document_id for name, (sample, _) in samples.items()}
    ids = asyncio.run(_seed(config, samples))
    seeded = SeededLog(config=config, ids=ids, pki=dev_pki, documents=documents)
    _check(seeded)
    return seeded
