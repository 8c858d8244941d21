"""A delaying TCP relay in front of the served PKI: what a responder across the Internet costs.

The development PKI answers on loopback within a few milliseconds; a CA's real OCSP responder
or TSA answers after tens to hundreds. ``DelayingRelay`` listens on its own loopback port,
waits ``delay`` seconds after accepting each connection, then relays bytes both ways to the
PKI's server. The PKI's server answers one request per connection (HTTP/1.0), so the delay is
paid once per request, like a round trip to a distant responder.

The relay runs in threads, not on the benchmark's event loop: a delay must not depend on what
the measured code does with the loop. ``delay`` can be changed at any time (the packages are
signed with no delay, then the timed columns run with the delay asked for).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

__all__ = ["DelayingRelay"]

_CHUNK = 64 * 1024


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy until ``source`` closes, then half-close ``sink`` so the other side sees the end."""
    with contextlib.suppress(OSError):
        while data := source.recv(_CHUNK):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class DelayingRelay:
    """Relays loopback connections from ``listener`` to ``upstream`` after ``delay`` seconds.

    Args:
        listener: a bound, listening socket (the port the certificates' URLs name).
        upstream: ``(host, port)`` of the real server.
        delay: seconds to wait before relaying each connection.
    """

    def __init__(self, listener: socket.socket, upstream: tuple[str, int], delay: float = 0.0) -> None:
        self.delay = delay
        self.connections = 0
        """Connections accepted so far (one per request: the server answers HTTP/1.0)."""
        self._listener = listener
        self._upstream = upstream
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name="bench-relay", daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            with self._lock:
                if self._closed:
                    client.close()
                    return
                self._threads.add(thread)
                self.connections += 1
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        try:
            if self.delay > 0:
                time.sleep(self.delay)
            with client, socket.create_connection(self._upstream) as upstream:
                forward = threading.Thread(target=_pump, args=(client, upstream), daemon=True)
                forward.start()
                _pump(upstream, client)
                # The server answered and closed (one request per connection): end the client's
                # side too, even if it would keep the connection alive.
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)
                forward.join()
        except OSError:
            client.close()
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def close(self) -> None:
        """Stop accepting and wait for the connections in flight."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._acceptor.join(timeout=5)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> DelayingRelay:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
