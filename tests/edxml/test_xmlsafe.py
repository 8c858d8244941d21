"""The hardened parser refuses hostile XML fast, reads no file, opens no socket, stays small.

The proofs do not rely on the parser's word:
* "no file is read": the entity points at a named pipe (FIFO); a watcher thread tries to
  open the write end without blocking, which succeeds only once somebody opened it for
  reading. If libxml2 or expat ever opened the file, the watcher would see it.
* "no network": the external DTD points at a loopback listener that counts connections.
* "memory stays bounded": a child process reports its peak RSS around the parse.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from gateway.edxml.xmlsafe import XMLLimits, XMLRejected, make_parser, parse_untrusted

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<edXML>&lol9;</edXML>
"""


def quadratic_blowup() -> bytes:
    """One 50 kB entity referenced 50 000 times: 2.5 GB if expanded."""
    entity = b"A" * 50_000
    refs = b"&a;" * 50_000
    return b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY a "' + entity + b'">]><edXML>' + refs + b"</edXML>"


def xxe(target: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY xxe SYSTEM "{target}">]>'
        "<edXML><Subject>&xxe;</Subject></edXML>"
    ).encode()


def parameter_entity(target: str) -> bytes:
    return (f'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY % p SYSTEM "{target}"> %p;]><edXML/>').encode()


def rejected(raw: bytes, limits: XMLLimits | None = None) -> XMLRejected:
    with pytest.raises(XMLRejected) as caught:
        parse_untrusted(raw, limits or XMLLimits())
    return caught.value


class FifoCanary:
    """A named pipe that records whether anybody opened it for reading."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                time.sleep(0.002)
                continue
            self.opened.set()
            try:
                os.write(fd, b"CANARY-SECRET")
            finally:
                os.close(fd)
            return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[FifoCanary]:
    watched = FifoCanary(tmp_path / "secret.txt")
    yield watched
    watched.close()


class CountingListener:
    """A loopback TCP listener that counts incoming connections."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    server = CountingListener()
    yield server
    server.close()


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("name", "raw", "code"),
    [
        ("billion laughs", BILLION_LAUGHS, "xml-forbidden-construct"),
        ("quadratic blowup", quadratic_blowup(), "xml-forbidden-construct"),
        ("internal DTD", b"<!DOCTYPE edXML [<!ELEMENT edXML ANY>]><edXML/>", "xml-forbidden-construct"),
        ("undeclared entity", b"<edXML>&nbsp;</edXML>", "xml-malformed"),
        ("not XML", b"%PDF-1.7 this is a PDF, not XML", "xml-malformed"),
        ("empty", b"", "xml-malformed"),
        ("truncated", b"<edXML><MessageHeader>", "xml-malformed"),
        ("deep nesting", b"<a>" * 1000 + b"</a>" * 1000, "xml-too-large"),
    ],
)
def test_hostile_input_fails_fast_with_a_finding_code(name: str, raw: bytes, code: str) -> None:
    started = time.perf_counter()
    error = rejected(raw)
    elapsed = time.perf_counter() - started
    assert error.code == code, name
    assert error.detail
    # Not a benchmark: an expanding parser would take minutes and gigabytes here.
    assert elapsed < 1.0, f"{name} took {elapsed:.2f} s"


def test_oversized_input_is_refused_on_its_length() -> None:
    limits = XMLLimits(max_bytes=1000)
    error = rejected(b"<edXML>" + b"A" * 2000 + b"</edXML>", limits)
    assert error.code == "xml-too-large"
    assert "1000" in error.detail


def test_element_count_limit() -> None:
    limits = XMLLimits(max_elements=100)
    error = rejected(b"<edXML>" + b"<a/>" * 200 + b"</edXML>", limits)
    assert error.code == "xml-too-large"
    assert "100 elements" in error.detail


def test_depth_limit_is_exact() -> None:
    limits = XMLLimits(max_depth=5)
    parse_untrusted(b"<a>" * 5 + b"</a>" * 5, limits)
    assert rejected(b"<a>" * 6 + b"</a>" * 6, limits).code == "xml-too-large"


def test_malformed_reports_line() -> None:
    error = rejected(b"<edXML>\n<From>\n</To>\n</edXML>")
    assert error.code == "xml-malformed"
    assert error.line == 3
    assert "line 3" in error.detail


def test_text_must_be_bytes() -> None:
    with pytest.raises(TypeError):
        parse_untrusted("<edXML/>")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- no file, no network


@pytest.mark.parametrize("build", [xxe, parameter_entity])
def test_external_entity_never_opens_the_file(canary: FifoCanary, build: object) -> None:
    assert callable(build)
    error = rejected(build(str(canary.path)))
    assert error.code == "xml-forbidden-construct"
    assert not canary.opened.wait(0.2), "the parser opened the entity's file"


def test_lxml_parser_alone_does_not_resolve_entities(canary: FifoCanary) -> None:
    """Second line of defence: even without the pre-scan, lxml is told not to read entities."""
    root = etree.fromstring(xxe(str(canary.path)), make_parser())
    assert "CANARY" not in etree.tostring(root).decode()
    assert not canary.opened.wait(0.2)


def test_external_dtd_never_touches_the_network(listener: CountingListener) -> None:
    url = f"http://127.0.0.1:{listener.port}/edxml.dtd"
    raw = f'<?xml version="1.0"?><!DOCTYPE edXML SYSTEM "{url}"><edXML/>'.encode()
    assert rejected(raw).code == "xml-forbidden-construct"
    # The bare lxml parser must not fetch either: libxml2 refuses the network load outright.
    with pytest.raises(etree.XMLSyntaxError, match="network"):
        etree.fromstring(raw, make_parser())
    time.sleep(0.1)
    assert listener.connections == 0


def test_xinclude_is_not_processed(canary: FifoCanary) -> None:
    raw = (
        f'<edXML xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="{canary.path}" parse="text"/></edXML>'
    ).encode()
    root = parse_untrusted(raw)
    assert "CANARY" not in etree.tostring(root).decode()
    assert not canary.opened.wait(0.2)


# --------------------------------------------------------------------------- what is allowed


def test_large_text_node_is_allowed_within_the_byte_limit() -> None:
    """Base64 attachments are single text nodes far over libxml2's 10 MB default."""
    payload = b"QUJD" * (4 * 1024 * 1024)  # 16 MiB of base64
    root = parse_untrusted(b"<edXML><ContentTransferEncoded>" + payload + b"</ContentTransferEncoded></edXML>")
    assert len(root[0].text or "") == len(payload)


def test_comments_and_processing_instructions_are_kept() -> None:
    """The envelope-signature check must see every node that is in the document."""
    root = parse_untrusted(b"<edXML><!-- note --><?pi data?><a/></edXML>")
    kinds = [type(node) for node in root]
    assert etree._Comment in kinds
    assert etree._ProcessingInstruction in kinds


# --------------------------------------------------------------------------- memory

_MEMORY_PROBE = """
import json, resource, sys
from gateway.edxml.xmlsafe import XMLRejected, parse_untrusted
sys.path.insert(0, sys.argv[2])
from tests.edxml.test_xmlsafe import BILLION_LAUGHS, quadratic_blowup
raw = {"billion": lambda: BILLION_LAUGHS, "quadratic": quadratic_blowup,
       "oversized": lambda: b"<edXML>" + b"A" * (100 * 1024 * 1024) + b"</edXML>"}[sys.argv[1]]()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    parse_untrusted(raw)
    outcome = "parsed"
except XMLRejected as exc:
    outcome = exc.code
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "growth_kib": after - before}))
"""


@pytest.mark.parametrize("attack", ["billion", "quadratic", "oversized"])
def test_memory_stays_bounded(attack: str, tmp_path: Path) -> None:
    """Peak RSS grows by less than 16 MiB while refusing each attack (measured in a child)."""
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, attack, str(repo)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        timeout=60,
    )
    report = json.loads(result.stdout)
    assert report["outcome"] in {"xml-forbidden-construct", "xml-too-large"}
    assert report["growth_kib"] < 16 * 1024, report


def test_prescan_leaves_nothing_alive_without_the_garbage_collector() -> None:
    """The expat handlers close over the scanner; the cycle must be broken, not left to gc."""
    import gc
    import tracemalloc

    raw = b"<edXML>" + b"Q" * (8 * 1024 * 1024) + b"</edXML>"
    gc.disable()
    tracemalloc.start()
    try:
        parse_untrusted(raw)
        live, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    assert live < 1024 * 1024, f"{live} bytes still alive after parsing"
