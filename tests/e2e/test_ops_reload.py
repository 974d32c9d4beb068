"""--config FILE and SIGHUP: the settings are read again and what can change live does,
keeping every connection (docs/operations.md, "Reloading")."""

from __future__ import annotations

import asyncio
import signal
import ssl
import subprocess
from pathlib import Path

from tests.conftest import StartChatd
from tests.e2e.ops_support import metrics_port, scrape, value
from tests.harness import CHATD, TIMEOUT, Client, is_join


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return cert, key


async def _tls_client(port: int) -> tuple[Client, bytes]:
    """A TLS client, and the certificate the server showed it (DER)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test compares the certificate itself
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        "127.0.0.1", port, ssl=context), TIMEOUT)
    shown = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return Client(reader, writer), shown


def _der(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


async def test_sighup_serves_a_new_certificate_to_new_connections_only(
        start_chatd: StartChatd, tmp_path: Path) -> None:
    old_cert, old_key = _certificate(tmp_path, "old")
    new_cert, new_key = _certificate(tmp_path, "new")
    config = tmp_path / "chatd.toml"
    config.write_text(f'tls-cert = "{old_cert}"\ntls-key = "{old_key}"\n')
    chatd = await start_chatd("--config", str(config), "--metrics", "127.0.0.1:0")
    alice, shown = await _tls_client(chatd.port)
    assert shown == _der(old_cert)
    await alice.join("alice")

    config.write_text(f'tls-cert = "{new_cert}"\ntls-key = "{new_key}"\n')
    chatd.signal(signal.SIGHUP)
    await chatd.wait_log(f"reload: TLS certificate {new_cert} loaded for new connections")
    bob, shown = await _tls_client(chatd.port)
    assert shown == _der(new_cert)
    await bob.join("bob")
    await alice.recv_until(is_join("bob"))
    await alice.say("still here")  # the connection made before the reload chats on
    assert (await bob.recv("message"))["message"] == "still here"
    await bob.say("welcome back")
    assert (await alice.recv("message"))["message"] == "welcome back"
    samples = await scrape(metrics_port(chatd))
    assert value(samples, "chatd_connections", transport="tls", mode="json") == 2


async def test_sighup_applies_limits_and_names_what_needs_a_restart(
        start_chatd: StartChatd, tmp_path: Path) -> None:
    config = tmp_path / "chatd.toml"
    config.write_text("max-per-ip = 5\nhistory = 100\n")
    chatd = await start_chatd("--config", str(config))
    alice = await Client.joined(chatd.port, "alice")
    bob = await Client.joined(chatd.port, "bob")
    config.write_text("max-per-ip = 2\nhistory = 200\nlog-level = \"warning\"\n")
    chatd.signal(signal.SIGHUP)
    await chatd.wait_log(r"reload: max_per_ip 5 -> 2")
    await chatd.wait_log(r"reload: history_size changed \(100 -> 200\) but needs a restart")
    await chatd.wait_log(r"reload: log_level 'info' -> 'warning'")
    third = await Client.open(chatd.port)  # alice and bob keep their places; a third has none
    assert (await third.recv("error"))["code"] == "too_many_connections"
    await alice.say("both still here")
    assert (await bob.recv_until(lambda m: m["type"] == "message"))[-1]["name"] == "alice"


async def test_a_bad_file_on_sighup_changes_nothing(start_chatd: StartChatd,
                                                    tmp_path: Path) -> None:
    config = tmp_path / "chatd.toml"
    config.write_text("max-per-ip = 1\n")
    chatd = await start_chatd("--config", str(config))
    alice = await Client.joined(chatd.port, "alice")
    config.write_text("max-per-ip = 1\nmax-per-ipp = 3\n")
    chatd.signal(signal.SIGHUP)
    await chatd.wait_log("reload failed, nothing changed: .*unknown setting 'max-per-ipp'")
    config.write_text("max-per-ip = \"many\"\n")
    chatd.signal(signal.SIGHUP)
    await chatd.wait_log("reload failed, nothing changed: .*max-per-ip: 'many' is not a whole")
    second = await Client.open(chatd.port)  # the limit in force is still 1
    assert (await second.recv("error"))["code"] == "too_many_connections"
    await alice.say("unaffected", ref="r")
    assert (await alice.recv("ack"))["ref"] == "r"


async def _exit_of(*args: str) -> tuple[int, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        CHATD, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, err.decode().splitlines()


async def test_a_bad_config_file_at_start_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "chatd.toml"
    for text, says in [
        ("prot = 5000\n", "unknown setting 'prot'"),
        ("port = 99999\n", "port: '99999' is not a port number"),
        ("quiet = \"yes\"\n", "quiet: expected true or false"),
        ("log-level = \"loud\"\n", "log-level: 'loud' is not one of"),
        ("port = [\n", "not valid TOML"),
    ]:
        config.write_text(text)
        code, lines = await _exit_of("--config", str(config), "--port", "0")
        assert code == 2, text
        assert len(lines) == 1 and says in lines[0] and str(config) in lines[0], lines
    code, lines = await _exit_of("--config", str(tmp_path / "missing.toml"))
    assert code == 2 and len(lines) == 1 and "cannot read" in lines[0]
