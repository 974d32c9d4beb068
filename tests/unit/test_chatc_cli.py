"""chatc.cli: options, environment, --help."""

from __future__ import annotations

import ssl

import pytest

from chatc import cli
from chatc.commands import TERMINAL_HELP
from chatc.options import Options


def options(*argv: str, **environ: str) -> Options:
    return cli.options_from(cli.build_parser().parse_args(list(argv)), environ)


def test_defaults() -> None:
    got = options("chat.example")
    assert (got.host, got.port, got.name, got.room) == ("chat.example", 5000, None, None)
    assert got.reconnect is None and got.tls is None and got.password is None and got.color


def test_everything_given() -> None:
    got = options("127.0.0.1", "5055", "--name", "alice", "--room", "dev", "--no-reconnect",
                  "--password", "pw")
    assert (got.port, got.name, got.room, got.reconnect, got.password) == (
        5055, "alice", "dev", False, "pw")
    assert options("h", "--reconnect").reconnect is True


def test_blank_name_is_kept_blank() -> None:
    assert options("h", "--name", "").name == ""


def test_environment() -> None:
    assert options("h", CHATC_PASSWORD="secret").password == "secret"
    assert options("h", "--password", "given", CHATC_PASSWORD="secret").password == "given"
    assert options("h", NO_COLOR="1").color is False
    assert options("h", NO_COLOR="").color is True  # only a non-empty NO_COLOR counts


def test_tls_options() -> None:
    verified = options("h", "--tls").tls
    assert verified is not None and verified.verify_mode == ssl.CERT_REQUIRED
    assert verified.check_hostname
    insecure = options("h", "--insecure").tls
    assert insecure is not None and insecure.verify_mode == ssl.CERT_NONE
    assert not insecure.check_hostname


def test_missing_cafile_is_one_clear_line() -> None:
    with pytest.raises(SystemExit) as stop:
        options("h", "--cafile", "/nonexistent/ca.pem")
    assert str(stop.value) == "chatc: --cafile /nonexistent/ca.pem: No such file or directory"


@pytest.mark.parametrize("port", ["0", "65536", "http", "-1"])
def test_bad_port_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.build_parser().parse_args(["h", port])
    assert stop.value.code == 2
    assert "chatc: argument PORT" in capsys.readouterr().err


def test_help_documents_everything() -> None:
    text = cli.build_parser().format_help()
    for word in ("HOST", "PORT", "--name", "--room", "--reconnect", "--no-reconnect", "--tls",
                 "--cafile", "--insecure", "--password", "NO_COLOR", "CHATC_PASSWORD",
                 "line mode", "exit status", "익명"):
        assert word in text
    for usage, what in TERMINAL_HELP:
        assert usage in text and what in text


def test_the_commands_in_help_line_up() -> None:
    """Each command's words start in one column, the longest usage (/oper NAME PASSWORD)
    included, as /help shows them in chatc."""
    text = cli.build_parser().format_help()
    columns = {line.index(what) for usage, what in TERMINAL_HELP
               for line in text.splitlines()
               if line.startswith(f"  {usage} ") and line.endswith(f" {what}")}
    assert len(columns) == 1, columns
