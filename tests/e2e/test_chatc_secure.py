"""chatc with TLS and a server password (PROTOCOL.txt 11), against a real chatd using
the self-signed certificate of the `certificate` fixture (made by openssl)."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from tests.support.chatc import STAMP, Screen, chatc
from tests.support.harness import CHATC, TIMEOUT, Chatd, StartChatd

PASSWORD = "s3cret-Zebra"


async def tls_chatd(start_chatd: StartChatd, certificate: tuple[Path, Path],
                    *args: str) -> Chatd:
    cert, key = certificate
    server = await start_chatd("--tls-cert", str(cert), "--tls-key", str(key), *args)
    await server.wait_log(r"listening on .* \(TLS\)")
    return server


async def run(port: int, *args: str, stdin: bytes = b"",
              env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """chatc in line mode on pipes, fed `stdin`; (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        CHATC, "127.0.0.1", str(port), *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})})
    out, err = await asyncio.wait_for(proc.communicate(stdin), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_chat_over_tls_with_a_password(
        start_chatd: StartChatd, certificate: tuple[Path, Path]) -> None:
    server = await tls_chatd(start_chatd, certificate, "--password", PASSWORD)
    cafile = str(certificate[0])
    listener = await asyncio.create_subprocess_exec(
        CHATC, "127.0.0.1", str(server.port), "--name", "bob", "--cafile", cafile,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "CHATC_PASSWORD": PASSWORD})
    assert listener.stdout is not None and listener.stdin is not None
    first = await asyncio.wait_for(listener.stdout.readline(), TIMEOUT)
    assert b"you are bob in lobby" in first
    code, out, err = await run(server.port, "--name", "alice", "--tls", "--cafile", cafile,
                               "--password", PASSWORD, stdin="secret 안녕\n".encode())
    assert (code, err) == (0, "")
    assert re.search(rf"{STAMP} <alice> secret 안녕\n", out)

    async def heard() -> None:
        assert listener.stdout is not None
        while b"<alice> secret" not in await listener.stdout.readline():
            pass

    await asyncio.wait_for(heard(), TIMEOUT)
    listener.stdin.close()
    assert await asyncio.wait_for(listener.wait(), TIMEOUT) == 0


async def test_untrusted_certificate_is_one_line_and_insecure_connects(
        start_chatd: StartChatd, certificate: tuple[Path, Path]) -> None:
    server = await tls_chatd(start_chatd, certificate)
    code, out, err = await run(server.port, "--tls", "--name", "alice")
    assert (code, out) == (1, "")
    assert re.fullmatch(
        rf"chatc: TLS certificate of 127\.0\.0\.1:{server.port} not trusted \(.+\); "
        r"use --cafile FILE or --insecure\n", err)
    code, out, err = await run(server.port, "--insecure", "--name", "alice", stdin=b"hi\n")
    assert (code, err) == (0, "")
    assert re.search(rf"{STAMP} <alice> hi\n", out)


async def test_plaintext_and_tls_mix_ups_say_what_is_wrong(
        start_chatd: StartChatd, certificate: tuple[Path, Path]) -> None:
    tls = await tls_chatd(start_chatd, certificate)
    code, out, err = await run(tls.port, "--name", "alice")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "try --tls" in err
    plain = await start_chatd()
    code, out, err = await run(plain.port, "--tls", "--insecure", "--name", "alice")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith(f"chatc: TLS failed with 127.0.0.1:"
                                                   f"{plain.port}")


async def test_wrong_password_in_line_mode_exits_1(start_chatd: StartChatd) -> None:
    server = await start_chatd("--password", PASSWORD)
    code, out, err = await run(server.port, "--name", "alice", "--password", "wrong")
    assert (code, out) == (1, "")
    assert err == ("chatc: the server wants a password, and it was missing or wrong "
                   "(auth_failed)\n")


async def test_terminal_asks_for_the_password_without_echo(
        start_chatd: StartChatd, tmp_path: Path) -> None:
    server = await start_chatd("--password", PASSWORD)
    screen = await Screen(tmp_path, "alice", chatc(server.port, "--name", "alice")).start()
    try:
        await screen.wait_for(r"the server wants a password, and it was missing or wrong "
                              r"\(auth_failed\)")
        await screen.wait_for(r"Password")
        await screen.type("hunter2")
        await screen.keys("Enter")
        await screen.wait_for(r"Password", count=2)
        await screen.type(PASSWORD)
        await screen.keys("Enter")
        text = await screen.wait_for(r"alice in lobby · 1 here")
        assert PASSWORD not in text and "hunter2" not in text
        await screen.keys("C-d")
        assert await screen.exit_status() == 0
    finally:
        await screen.close()
