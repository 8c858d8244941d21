"""An SMTP/LMTP sink in another process, for measuring a client's memory with ``tracemalloc``.

``tests.smtpsink`` serves aiosmtpd on the test's own event loop, so the bytes it keeps would be
counted against the client. This one runs aiosmtpd (no size limit) in a child process and keeps
nothing: it answers DATA ``250 2.0.0 sha256=<hex> size=<n>`` (once per recipient over LMTP)
and prints the same ``<hex> <n>`` line on its stdout, so a test can check what arrived
(dot-unstuffed) byte for byte without holding it. With ``tls`` it requires STARTTLS.

Use it as ``with FarSink(lmtp=False) as sink: ... sink.port ...; sink.received()``.
"""

from __future__ import annotations

import subprocess
import sys
from types import TracebackType

from tests.mailtls import LoopbackTls

__all__ = ["FarSink"]

_SERVER = r"""
import asyncio, hashlib, ssl, sys
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

class Handler:
    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or b""
        line = f"{hashlib.sha256(content).hexdigest()} {len(content)}"
        print(line, flush=True)
        return "\r\n".join(f"250 2.0.0 sha256={line.replace(' ', ' size=')}" for _ in envelope.rcpt_tos)

async def main():
    kind = LMTP if sys.argv[1] == "lmtp" else SMTP
    tls = None
    if len(sys.argv) > 2:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(sys.argv[2], sys.argv[3])
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: kind(
            Handler(), hostname="far.test", loop=loop, data_size_limit=None, timeout=60,
            tls_context=tls, require_starttls=tls is not None,
        ),
        "127.0.0.1",
        0,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


class FarSink:
    """aiosmtpd in a child process on a loopback port (see the module docstring)."""

    def __init__(self, *, lmtp: bool = False, tls: LoopbackTls | None = None) -> None:
        self.lmtp = lmtp
        self.tls = tls
        self.host = "127.0.0.1"
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> FarSink:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _SERVER,
                "lmtp" if self.lmtp else "smtp",
                *([str(self.tls.cert), str(self.tls.key)] if self.tls else []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())
        return self

    def received(self) -> tuple[str, int]:
        """The SHA-256 (hex) and size of the next message the sink took (waits for its line)."""
        assert self._process is not None
        assert self._process.stdout is not None
        digest, size = self._process.stdout.readline().split()
        return digest, int(size)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()
