"""The development PKI served from a child process, so that its CPU is not the benchmark's.

``bench.corpus.served_pki`` serves the PKI in a thread of the benchmark's own process. For a
serial column that is harmless (a remote responder's work also delays whoever waits for it),
but concurrent columns share one GIL with that thread: every time stamp the PKI signs (about
20 ms of CPU with certomancer) is time the sealers cannot run, which a real, remote TSA would
not take from them. ``served_pki_in_child`` generates the PKI here (the benchmark needs its keys
and certificates), then forks a child that serves it on the already bound port: the answers are
the same, made on another core.

Linux only (``fork``): the child inherits the listening socket and the generated PKI without
pickling. Fork happens before the benchmark starts any thread or event loop.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

from gateway.clock import SystemClock
from gateway.devpki import DevPKI, bind_listener, serve_pki, write_bundle

__all__ = ["served_pki_in_child"]

_STOP_SECONDS = 10.0


def _serve(pki: DevPKI, listener: socket.socket, stop: Connection, parents_end: Connection) -> None:
    """The child: serve until the parent says stop (or goes away: then ``recv`` sees the end)."""
    parents_end.close()
    server = serve_pki(pki, listener)
    try:
        with contextlib.suppress(EOFError):
            stop.recv()
    finally:
        server.close()


@contextmanager
def served_pki_in_child() -> Iterator[DevPKI]:
    """A fresh development PKI, its bundle in a temporary directory, served by a child process.

    Yields:
        The PKI (its URLs name a loopback port the child answers on until the block exits; a
        child that does not stop within ten seconds after is terminated).
    """
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="bench-pki-") as tmp:
        directory = Path(tmp)
        listener = bind_listener("127.0.0.1", 0)
        try:
            port = listener.getsockname()[1]
            pki = DevPKI.generate(
                directory, base_url=f"http://127.0.0.1:{port}", anchor=SystemClock().now().replace(microsecond=0)
            )
            write_bundle(pki, directory)
            receiver, sender = context.Pipe(duplex=False)
            child = context.Process(
                target=_serve, args=(pki, listener, receiver, sender), name="bench-pki", daemon=True
            )
            child.start()
            receiver.close()
        finally:
            listener.close()  # the child holds its own copy
        try:
            yield pki
        finally:
            with contextlib.suppress(OSError):
                sender.send(None)
            sender.close()
            child.join(_STOP_SECONDS)
            if child.is_alive():
                child.terminate()
                child.join(_STOP_SECONDS)
