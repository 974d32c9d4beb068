"""TLS (PROTOCOL.txt 11.1), with a self-signed certificate made at test time by openssl."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from tests.conftest import StartChatd
from tests.harness import TIMEOUT, Client


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
    from tests.harness import CHATD

    missing = tmp_path / "missing.pem"
    proc = await asyncio.create_subprocess_exec(
        CHATD, "--port", "0", "--host", "127.0.0.1", "--tls-cert", str(missing),
        "--tls-key", str(missing), stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "cannot start" in lines[0] and "Traceback" not in err.decode()
