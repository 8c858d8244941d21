"""The chunked DATA reader against the RFC 5321 rules and a line-by-line reference."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smtpserver import read_data, stream_data
from gateway.smtpserver.data import Unstuffer

LIMIT = 1001  # aiosmtpd's StreamReader limit (line_length_limit)


async def _feed(reader: asyncio.StreamReader, chunks: Sequence[bytes], eof: bool) -> None:
    for chunk in chunks:
        reader.feed_data(chunk)
        await asyncio.sleep(0)
    if eof:
        reader.feed_eof()


def read(chunks: Sequence[bytes], limit: int | None = None, *, eof: bool = True) -> tuple[bytes | None, bytes]:
    """Feed ``chunks`` one by one; return what read_data gave and what is left in the stream."""

    async def main() -> tuple[bytes | None, bytes]:
        reader = asyncio.StreamReader(limit=LIMIT)
        feeder = asyncio.create_task(_feed(reader, chunks, eof))
        body = await read_data(reader, limit)
        await feeder
        rest = await reader.read() if eof else b""
        return body, rest

    return asyncio.run(main())


def reference(stream: bytes) -> tuple[bytes, bytes] | None:
    """aiosmtpd's rule, line by line: the first CRLF-terminated line that is exactly '.' ends it."""
    lines = re.split(b"(?<=\r\n)", stream)
    body: list[bytes] = []
    for index, line in enumerate(lines):
        if line == b".\r\n":
            return b"".join(body), b"".join(lines[index + 1 :])
        if not line.endswith(b"\r\n"):
            return None  # no end of data
        body.append(line[1:] if line.startswith(b".") else line)
    return None


@pytest.mark.parametrize(
    ("stream", "body", "rest"),
    [
        (b".\r\n", b"", b""),
        (b"a\r\n.\r\n", b"a\r\n", b""),
        (b"a\r\n..b\r\n...\r\n.\r\nQUIT\r\n", b"a\r\n.b\r\n..\r\n", b"QUIT\r\n"),
        (b"..\r\n.\r\n", b".\r\n", b""),
        (b"a\n.\r\nb\r.\r\nc.\r\n.\r\n", b"a\n.\r\nb\r.\r\nc.\r\n", b""),  # no bare-LF/CR smuggling
        (b"x" * 5000 + b"\r\n.\r\n", b"x" * 5000 + b"\r\n", b""),  # long lines are kept
        (b"\r\n.\r\n", b"\r\n", b""),
    ],
)
def test_end_of_data_and_unstuffing(stream: bytes, body: bytes, rest: bytes) -> None:
    assert read([stream]) == (body, rest)
    assert read([bytes([b]) for b in stream]) == (body, rest)  # split at every byte


def test_over_the_limit_is_drained_and_refused() -> None:
    stream = b"a" * 70 + b"\r\n"
    assert read([stream * 100 + b".\r\nNOOP\r\n"], limit=7200) == (stream * 100, b"NOOP\r\n")
    assert read([stream * 101 + b".\r\nNOOP\r\n"], limit=7200) == (None, b"NOOP\r\n")
    assert read([stream] * 1000 + [b".\r\nNOOP\r\n"], limit=7200) == (None, b"NOOP\r\n")


def test_the_peer_closing_early_is_an_incomplete_read() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        read([b"a\r\nb\r\n"])


@settings(max_examples=300, deadline=None)
@given(
    stream=st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b".\r\n", b"x" * 700]), max_size=40).map(
        b"".join
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=30_000), max_size=8),
)
def test_agrees_with_the_line_by_line_reference(stream: bytes, cuts: list[int]) -> None:
    stream += b"\r\n.\r\nNEXT\r\n"
    expected = reference(stream)
    assert expected is not None
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    assert read(chunks) == expected


def test_a_failing_sink_is_raised_after_the_stream_is_drained() -> None:
    """The spool failing half way: the rest of DATA is still read, so the next command is intact."""
    pieces: list[bytes] = []

    async def sink(piece: bytes) -> None:
        if pieces:
            raise OSError(28, "No space left on device")
        pieces.append(piece)

    async def main() -> bytes:
        reader = asyncio.StreamReader(limit=LIMIT)
        chunks = [b"a" * 3000 + b"\r\n"] * 5 + [b".\r\nNOOP\r\n"]
        feeder = asyncio.create_task(_feed(reader, chunks, True))
        with pytest.raises(OSError, match="No space"):
            await stream_data(reader, None, sink)
        await feeder
        return await reader.read()

    assert asyncio.run(main()) == b"NOOP\r\n"
    assert len(pieces) == 1


@settings(max_examples=300, deadline=None)
@given(
    body=st.lists(st.sampled_from([b"a", b".", b"..", b"\r", b"\n", b"\r\n", b"\r\n."]), max_size=60).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=10),
)
def test_unstuffing_in_pieces_equals_unstuffing_at_once(body: bytes, cuts: list[int]) -> None:
    whole = (body[1:] if body.startswith(b".") else body).replace(b"\r\n.", b"\r\n")
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    unstuffer = Unstuffer()
    assert b"".join(unstuffer.feed(body[a:b]) for a, b in itertools.pairwise(points)) == whole
