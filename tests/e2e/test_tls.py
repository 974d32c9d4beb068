"""TLS (PROTOCOL.txt 11.1), with a self-signed certificate made at test time by openssl."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from tests.support.harness import TIMEOUT, Client, StartChatd


async def _tls_client(port: int, cafile: Path) -> Client:
    context = ssl.create_default_context(cafile=str(cafile))
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost"), TIMEOUT)
    return Client(reader, writer)


async def test_chat_over_tls(start_chatd: StartChatd, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server = await start_chatd("--tls-cert", str(cert), "--tls-key", str(key))
    await server.wait_log(r"listening on .* \(TLS\)")
    a, b = await _tls_client(server.port, cert), await _tls_client(server.port, cert)
    await a.join("alice")
    await b.join("bob")
    await a.say("secret 안녕")
    assert (await b.recv("message"))["message"] == "secret 안녕"


async def test_plaintext_client_on_a_tls_port_is_closed_at_once(
    start_chatd: StartChatd, certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server = await start_chatd("--tls-cert", str(cert), "--tls-key", str(key))
    plain = await Client.open(server.port)
    await plain.send(b'{"type":"connect","name":"plain"}\n')
    lines = await plain.closed(timeout=5)
    assert not any(line.startswith(b"{") for line in lines)  # nothing readable, no hang


async def test_tls_client_on_a_plaintext_port_fails_at_once(
    start_chatd: StartChatd, certificate: tuple[Path, Path],
) -> None:
    cert, _ = certificate
    server = await start_chatd()
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        await _tls_client(server.port, cert)
    await server.wait_log("sent a TLS handshake to a plaintext port; closing")
    # The server keeps serving plaintext clients:
    await Client.joined(server.port, "plain")


async def test_bad_certificate_files_exit_2_with_one_line(start_chatd: StartChatd,
                                                          tmp_path: Path) -> None:
    from tests.support.harness import CHATD

    missing = tmp_path / "missing.pem"
    proc = await asyncio.create_subprocess_exec(
        CHATD, "--port", "0", "--host", "127.0.0.1", "--tls-cert", str(missing),
        "--tls-key", str(missing), stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "cannot start" in lines[0] and "Traceback" not in err.decode()


async def test_silent_tls_sockets_are_counted_at_accept_and_closed_after_the_timeout(
    start_chatd: StartChatd, certificate: tuple[Path, Path],
) -> None:
    """PROTOCOL.txt 8.4, 11.1: a socket that never finishes its handshake counts against
    --max-per-ip from its accept, and is closed after --tls-handshake-timeout."""
    cert, key = certificate
    server = await start_chatd("--tls-cert", str(cert), "--tls-key", str(key),
                               "--max-per-ip", "3", "--tls-handshake-timeout", "1")
    silent = [await Client.open(server.port) for _ in range(3)]
    await server.wait_log(r"#3 127\.0\.0\.1:\d+ connected")
    extra = await Client.open(server.port)
    assert await extra.closed(timeout=5) == []  # refused before any handshake work
    await server.wait_log("refused: 127.0.0.1 has its maximum of 3 connections")
    for sock in silent:  # each is closed by the server once its handshake time is up
        assert await sock.closed(timeout=5) == []
    await server.wait_log("TLS handshake failed: timed out")
    a = await _tls_client(server.port, cert)  # the slots are free again
    await a.join("alice")
