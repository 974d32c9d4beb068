"""chatd.config: the TOML file driven by the argparse parser, the layers, --print-config."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from chatd import cli
from chatd.config import ConfigError, effective, layered, mask_url, read_file


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "chatd.toml"
    path.write_text(text)
    return str(path)


def test_every_option_of_the_parser_is_a_key_of_the_file(tmp_path: Path) -> None:
    """What --print-config prints for settings unlike the defaults reads back the same."""
    parser = cli.build_parser()
    argv = ["--host", "::1", "--port", "6001", "--max-send-queue", "64K", "--rate", "0.5",
            "--quiet", "--log-format", "json", "--web", "8080", "--web-origin", "https://a.b",
            "--metrics", "127.0.0.1:9100", "--loop", "asyncio", "--history-db", "h.db"]
    args = layered(parser, argv, {}, {})
    printed = effective(parser, args, {})
    keys = {line.split()[1] if line.startswith("#") else line.split(" = ")[0]
            for line in printed.splitlines()}
    options = {next(flag[2:] for flag in action.option_strings if flag.startswith("--"))
               for action in parser._actions
               if any(flag.startswith("--") for flag in action.option_strings)}
    assert keys == options - {"help", "version", "config", "print-config"}
    again = layered(parser, [], {}, read_file(parser, _file(tmp_path, printed)))
    assert vars(again) == vars(args)


def test_db_is_the_new_name_of_history_db_and_both_work(tmp_path: Path) -> None:
    """PROTOCOL.txt 18.11: --db names the database; --history-db, on the command line
    and in a file, keeps working; --print-config prints the new name."""
    parser = cli.build_parser()
    for argv in (["--db", "a.db"], ["--history-db", "a.db"]):
        assert layered(parser, argv, {}, {}).history_db == "a.db"
    for key in ("db", "history-db"):
        settings = read_file(parser, _file(tmp_path, f'{key} = "b.db"\n'))
        assert layered(parser, [], {}, settings).history_db == "b.db"
    printed = effective(parser, layered(parser, ["--history-db", "c.db"], {}, {}), {})
    assert 'db = "c.db"' in printed.splitlines() and "history-db =" not in printed


def test_an_option_added_to_the_parser_is_in_the_file_without_more_code(
        tmp_path: Path) -> None:
    parser = cli.build_parser()
    parser.add_argument("--db-max-bytes", type=int, default=0)  # another engineer's
    settings = read_file(parser, _file(tmp_path, "db-max-bytes = 1048576\n"))
    assert layered(parser, [], {}, settings).db_max_bytes == 1048576


def test_values_are_checked_by_the_options_own_types(tmp_path: Path) -> None:
    parser = cli.build_parser()
    settings = read_file(parser, _file(tmp_path, (
        'max-send-queue = "1M"\nport = 6000\nrate = 0.5\nquiet = true\n'
        'host = ["127.0.0.1", "::1"]\noper = "alice:pw"\nlog-format = "json"\n')))
    assert settings == {"max_send_queue": 1024 * 1024, "port": 6000, "rate": 0.5,
                        "quiet": True, "host": ["127.0.0.1", "::1"], "oper": ["alice:pw"],
                        "log_format": "json"}
    for text, says in [("prot = 1\n", "unknown setting 'prot'"),
                       ("[network]\nport = 1\n", "unknown setting 'network'"),
                       ("config = \"x\"\n", "unknown setting 'config'"),
                       ("port = \"x\"\n", "port: 'x' is not a port number"),
                       ("port = true\n", "expected a string or a number"),
                       ("quiet = 1\n", "expected true or false"),
                       ("loop = \"fast\"\n", "'fast' is not one of auto, uvloop, asyncio")]:
        with pytest.raises(ConfigError, match=says):
            read_file(parser, _file(tmp_path, text))


def test_command_line_then_environment_then_file_then_defaults(tmp_path: Path) -> None:
    parser = cli.build_parser()
    path = _file(tmp_path, 'port = 6000\nrate = 1.0\npassword = "file"\n'
                           'oper = ["f:1"]\nhost = ["127.0.0.1"]\n')
    env = {"CHATD_PASSWORD": "env"}
    _, config = cli.settings(parser, ["--config", path, "--port", "7000",
                                      "--host", "::1"], env)
    assert config.port == 7000  # command line over file
    assert config.rate == 1.0  # file over default
    assert config.password == "env"  # environment over file
    assert config.hosts == ("::1",)  # a list on the command line replaces the file's
    assert config.hub.opers == (("f", "1"),)
    assert config.max_clients == 5000  # default
    _, config = cli.settings(parser, ["--config", path], {"CHATD_OPERS": "e:2"})
    assert config.hub.opers == (("e", "2"),)  # CHATD_OPERS replaces the file's operators
    _, config = cli.settings(parser, ["--config", path, "--password", "cli"], env)
    assert config.password == "cli"


def test_print_config_is_a_config_file_with_secrets_masked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, 'password = "s3cret"\noper = ["alice:pw1"]\n'
                           'redis = "redis://:hunter2@localhost:6379/0"\nmax-clients = 7\n')
    assert cli.main(["--config", path, "--print-config"]) == 0
    out = capsys.readouterr().out
    for secret in ("s3cret", "pw1", "hunter2"):
        assert secret not in out
    printed = tomllib.loads(out)
    assert printed["max-clients"] == 7
    assert printed["oper"] == ["alice:********"]
    assert printed["redis"] == "redis://:********@localhost:6379/0"
    parser = cli.build_parser()
    again = read_file(parser, _file(tmp_path, out.replace("********", "x")))
    assert again["max_clients"] == 7  # what it prints reads back as a file


def test_print_config_without_a_file_shows_the_defaults() -> None:
    parser = cli.build_parser()
    args = layered(parser, [], {}, {})
    printed = tomllib.loads(effective(parser, args, {}))
    assert printed["port"] == 5000 and printed["log-format"] == "text"
    assert "password" not in printed  # not set: a comment says so


def test_mask_url() -> None:
    assert mask_url("redis://:pw@h:6379/0") == "redis://:********@h:6379/0"
    assert mask_url("rediss://user:pw@h/0") == "rediss://user:********@h/0"
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"


def test_a_bad_file_exits_2_with_one_line(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, "max-clients = -1\n")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--config", path])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "max-clients: '-1' is not a whole number" in err[0]


def test_mentions_are_on_unless_turned_off_and_the_old_flag_still_means_on() -> None:
    """18.9: --mentions off; a bare --mentions (from when they were off by default)."""
    parser = cli.build_parser()
    for argv, on in (([], True), (["--mentions"], True), (["--mentions", "on"], True),
                     (["--mentions", "off"], False)):
        assert cli.config_from(layered(parser, argv, {}, {}), {}).hub.mentions is on, argv
