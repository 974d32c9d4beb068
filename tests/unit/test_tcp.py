"""chatd.tcp: the stream protocol written out for less memory a connection still has
what asyncio's sets (the TCP shell itself is tested on real sockets in tests/e2e)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from chatd.tcp import StreamProtocol, StreamReader


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _fed() -> None:
    pass


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    pass


def test_the_protocol_has_every_attribute_asyncio_gives_its_own(
        loop: asyncio.AbstractEventLoop) -> None:
    """StreamProtocol does not run StreamReaderProtocol.__init__: a Python that adds an
    attribute there (which its other methods would read) fails here first."""
    theirs = asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), _serve, loop=loop)
    ours = StreamProtocol(asyncio.StreamReader(loop=loop), _serve, loop, _fed)
    assert [name for name in vars(theirs) if not hasattr(ours, name)] == [
        "_stream_reader_wr", "_strong_reader"]  # ours holds the reader itself
    assert ours._stream_reader is not None
    theirs._closed.cancel()  # type: ignore[attr-defined]  # not awaited: no warning


def test_a_close_waiter_is_made_when_asked_for_and_is_the_one_the_close_completes(
        loop: asyncio.AbstractEventLoop) -> None:
    ours = StreamProtocol(asyncio.StreamReader(loop=loop), _serve, loop, _fed)
    assert ours._closed is None
    waiter = ours._get_close_waiter(None)
    ours.connection_lost(None)
    assert waiter.done() and waiter.result() is None
    late = StreamProtocol(asyncio.StreamReader(loop=loop), _serve, loop, _fed)
    late.connection_lost(ConnectionResetError(104, "reset"))  # lost before anyone waits
    assert isinstance(late._get_close_waiter(None).exception(), ConnectionResetError)


def test_the_reader_reads_data_the_end_and_errors_as_asyncio_s_does(
        loop: asyncio.AbstractEventLoop) -> None:
    """Its read waits on the data's future without a coroutine of its own."""
    reader = StreamReader(loop=loop)

    async def read_all() -> list[bytes]:
        chunks = [await reader.read(100)]
        loop.call_soon(reader.feed_eof)
        chunks.append(await reader.read(100))
        return chunks

    loop.call_soon(reader.feed_data, b"hello")
    assert loop.run_until_complete(read_all()) == [b"hello", b""]
    assert reader._waiter is None
    failing = StreamReader(loop=loop)
    loop.call_soon(failing.set_exception, ConnectionResetError(104, "reset"))
    with pytest.raises(ConnectionResetError):
        loop.run_until_complete(failing.read(100))
    assert failing._waiter is None


def test_each_chunk_is_reported_once_it_is_in_the_reader(
        loop: asyncio.AbstractEventLoop) -> None:
    """So the writer's flush can go behind the task it wakes (chatd.outbox)."""
    reader = StreamReader(loop=loop)
    buffered: list[bytes] = []
    ours = StreamProtocol(reader, _serve, loop,
                          lambda: buffered.append(bytes(reader._buffer)))  # type: ignore[attr-defined]
    ours.data_received(b"a")
    ours.data_received(b"b")
    assert buffered == [b"a", b"ab"]
    ours.connection_lost(None)
    ours.data_received(b"c")  # after the end: nobody reads it, nothing to report
    assert buffered == [b"a", b"ab"]
