"""The pipeline's only ways out: to the DMS and to mail servers (HOUSE.md rule 3).

Implementations live at the edges (``gateway.inbound.deliver``, ``gateway.outbound.send``);
unit tests use in-memory twins, integration tests real sockets. Errors carry their meaning:
``TransientError`` (4xx, network, disk: retry later) or ``PermanentError`` (5xx: give up).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

__all__ = ["Deliverer", "Sender", "SpooledMail"]

_PIECE = 1024 * 1024


@dataclass(frozen=True)
class SpooledMail:
    """A mail to hand over as it lies in the spool: ``head`` (headers we add) then the file.

    A deliverer copies it piece by piece (``pieces``), so a 90 MB mail is never in memory whole
    (issue 7, P4); one that needs the bytes at once calls ``read``. Both read the file from
    where it is (``Spool.open`` hands it over checked and at its start), in a worker thread.
    """

    head: bytes
    file: BinaryIO

    def pieces(self) -> Iterator[bytes]:
        """``head``, then the file in pieces of 1 MiB."""
        yield self.head
        while piece := self.file.read(_PIECE):
            yield piece

    def read(self) -> bytes:
        """The whole mail in memory (``head`` and the file)."""
        return b"".join(self.pieces())


class Deliverer(Protocol):
    """Hands accepted mail to the DMS."""

    async def deliver(self, mail: bytes | SpooledMail, *, key: str) -> None:
        """Deliver ``mail``; ``key`` identifies it, so that a replay after a crash is harmless.

        Raises:
            TransientError: the DMS is not reachable now.
            PermanentError: the DMS refuses the mail for good.
        """
        ...


class Sender(Protocol):
    """Sends mail to the axis, to senders and to the DMS's notice address."""

    async def send(self, mail: bytes | SpooledMail, *, mail_from: str, rcpt_to: Sequence[str]) -> str:
        """Send ``mail`` (bytes, or streamed from the spool); returns the server's final reply (e.g. ``250 2.0.0 Ok``).

        Raises:
            TransientError: a 4xx reply or a network error (retry later).
            PermanentError: a 5xx reply (give up).
        """
        ...
