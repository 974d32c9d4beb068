"""Settings from four layers: the command line, then the environment, then a TOML file
(`--config FILE`), then the defaults (docs/operations.md).

The file is driven by the argparse parser itself: every option the parser has is a key of
the file under its long name without the dashes (`max-send-queue = "1M"`), its value
checked by the option's own type and choices. An option added to chatd.cli is in the file
without a line of code here. What is not an option (a typo, a section) is an error that
names the key; so is a value of the wrong kind.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any, Final

# The environment variables chatd has always read, and the option each one stands for.
ENV_OPTIONS: Final = {"CHATD_PASSWORD": "password", "CHATD_OPERS": "oper",
                      "CHATD_REDIS": "redis"}
# Options that only make sense on the command line (not in the file).
COMMAND_LINE_ONLY: Final = frozenset({"help", "version", "config", "print-config"})
SECRET: Final = "********"


class ConfigError(Exception):
    """A bad config file: the message is the one line the operator sees."""


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every option of the parser by its long name without the dashes."""
    found: dict[str, argparse.Action] = {}
    for action in parser._actions:  # argparse has no public list of its actions
        for flag in action.option_strings:
            if flag.startswith("--"):
                found[flag[2:]] = action
    return found


def _convert(parser: argparse.ArgumentParser, action: argparse.Action, key: str,
             raw: Any) -> Any:
    """One value of the file, checked and converted as the command line would be."""
    if isinstance(raw, bool) or raw is None:
        text = None
    elif isinstance(raw, (str, int, float)):
        text = str(raw)
    else:
        text = None
    if text is None:
        raise ConfigError(f"{key}: expected a string or a number, not {raw!r}")
    value: Any = text
    if action.type is not None:
        convert: Any = action.type
        try:
            value = convert(text)
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            raise ConfigError(f"{key}: {exc}") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ConfigError(f"{key}: {raw!r} is not one of {choices}")
    return value


def read_file(parser: argparse.ArgumentParser, path: str) -> dict[str, Any]:
    """The file's settings as {dest: value}; ConfigError with one line if it is bad."""
    try:
        with open(path, "rb") as file:
            table = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    options = _options(parser)
    settings: dict[str, Any] = {}
    for key, raw in table.items():
        action = options.get(key.replace("_", "-"))
        if action is None or key in COMMAND_LINE_ONLY:
            raise ConfigError(f"{path}: unknown setting {key!r} (the settings are the long "
                              "options of chatd --help, without the dashes)")
        try:
            if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
                if not isinstance(raw, bool):
                    raise ConfigError(f"{key}: expected true or false, not {raw!r}")
                value: Any = raw if isinstance(action, argparse._StoreTrueAction) else not raw
            elif isinstance(action, argparse._AppendAction):
                items = raw if isinstance(raw, list) else [raw]
                value = [_convert(parser, action, key, item) for item in items]
            else:
                value = _convert(parser, action, key, raw)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        settings[action.dest] = value
    return settings


def _given(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Only the options the command line names (defaults left out)."""
    saved = [(action, action.default) for action in parser._actions]
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        return parser.parse_args(argv)
    finally:
        for action, default in saved:
            action.default = default


def layered(parser: argparse.ArgumentParser, argv: Sequence[str], env: Mapping[str, str],
            file_settings: Mapping[str, Any]) -> argparse.Namespace:
    """The effective options: command line, then environment, then file, then defaults."""
    args = parser.parse_args([])  # the defaults
    for dest, value in file_settings.items():
        setattr(args, dest, value)
    for variable, option in ENV_OPTIONS.items():
        if env.get(variable):
            # CHATD_OPERS is read by chatd.cli.opers_from, along with --oper; it replaces
            # the file's operators like any other layer above the file.
            setattr(args, option, [] if option == "oper" else env[variable])
    for dest, value in vars(_given(parser, argv)).items():
        setattr(args, dest, value)  # an option given on the command line replaces, lists too
    return args


def config_path(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    path: str | None = getattr(_given(parser, argv), "config", None)
    return path


def effective(parser: argparse.ArgumentParser, args: argparse.Namespace,
              env: Mapping[str, str]) -> str:
    """The settings in force as a TOML file (secrets masked): `chatd --print-config`."""
    lines = []
    seen: set[int] = set()
    for key, action in _options(parser).items():
        if key in COMMAND_LINE_ONLY or id(action) in seen:  # an alias: its first name
            continue
        seen.add(id(action))
        value = getattr(args, action.dest, None)
        if action.dest == "oper":
            value = [*(value or []), *([env["CHATD_OPERS"]] if env.get("CHATD_OPERS") else [])]
            value = [f"{spec.partition(':')[0]}:{SECRET}" for spec in ",".join(value).split(",")
                     if spec]
        elif action.dest == "password" and value:
            value = SECRET
        elif action.dest == "redis" and value:
            value = mask_url(value)
        if value is None:
            lines.append(f"# {key} is not set")
        else:
            lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def mask_url(url: str) -> str:
    """redis://user:PASSWORD@host -> redis://user:********@host."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.partition(':')[0]}:{SECRET}@{host}"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML string
