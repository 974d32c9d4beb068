"""Login tokens (PROTOCOL.txt 18.3) kept between runs: one JSON file only its user can
read, keyed by server and account, so the password itself is never kept anywhere.

Bounded: at most MAX_TOKENS entries (the oldest written goes first), which covers any
person's servers and accounts; a garbled file counts as empty rather than stopping chatc.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from chatd.protocol.labels import name_key

MAX_TOKENS = 64


def default_path(environ: Mapping[str, str]) -> Path:
    state = environ.get("XDG_STATE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return Path(state) / "chatc" / "tokens.json"


class TokenStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def key(host: str, port: int, name: str) -> str:
        return f"{host}:{port} {name_key(name)}"

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def _save(self, data: dict[str, str]) -> None:
        while len(data) > MAX_TOKENS:
            del data[next(iter(data))]
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        spare = self.path.with_name(self.path.name + ".new")
        # Created 0600 from the start: the token must never be readable by others, not
        # even for a moment.
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out)
        os.chmod(spare, 0o600)
        os.replace(spare, self.path)

    def get(self, host: str, port: int, name: str) -> str | None:
        return self._load().get(self.key(host, port, name))

    def put(self, host: str, port: int, name: str, token: str) -> None:
        data = self._load()
        key = self.key(host, port, name)
        data.pop(key, None)  # re-inserted last: the newest
        data[key] = token
        self._save(data)

    def forget(self, host: str, port: int, name: str) -> None:
        data = self._load()
        if data.pop(self.key(host, port, name), None) is not None:
            self._save(data)


class Saved:
    """The saved login of one server and name, as the app's Client sees it."""

    def __init__(self, path: Path | None, host: str, port: int, name: str | None
                 ) -> None:
        store = TokenStore(path) if path is not None else None
        self.store, self.host, self.port, self.name = store, host, port, name or ""
        self.token = store.get(host, port, self.name) if store and name else None

    def changed(self, token: str | None) -> None:
        """Client's on_token: keep a new token, forget a refused one."""
        self.token = token
        if self.store is None or not self.name:
            return
        if token:
            self.store.put(self.host, self.port, self.name, token)
        else:
            self.store.forget(self.host, self.port, self.name)
