"""Account passwords (PROTOCOL.txt 18.6): a slow salted hash, and the pool that keeps it
off the event loop.

The hash is the standard library's scrypt (OpenSSL), so no new dependency: argon2id
would be the first choice of a new design, but only through argon2-cffi, a compiled
dependency for what scrypt already does well enough (memory-hard, tunable). A stored
hash names its own parameters, in the PHC string form passlib and others use:

    $scrypt$ln=14,r=8,p=1$<salt, base64>$<key, base64>

so the parameters can be raised later: an old hash keeps verifying, and `needs_rehash`
tells the caller to store a new one at the next good login.

One hash takes tens of milliseconds of CPU (measured in the report of the change), far
too long for the event loop, which must answer pings within milliseconds. `Hasher` runs
hashes on a small thread pool (OpenSSL's scrypt releases the GIL) behind a bound on
hashes in flight: past it a login is refused at once (`HasherBusy`) instead of queueing
without end, so a flood of logins costs the server a fixed amount of CPU and memory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeVar

T = TypeVar("T")

SALT_BYTES: Final = 16
KEY_BYTES: Final = 32
# Passwords are bounded before they reach the hash: scrypt takes any length, but a
# megabyte-long "password" should cost its sender a bad_field, not the server a copy.
MIN_PASSWORD_CHARS: Final = 6
MAX_PASSWORD_BYTES: Final = 256
# A stored hash asking for more memory than this is not one of ours (a damaged database
# must not make one login take gigabytes).
MAX_MEMORY: Final = 256 * 1024 * 1024

_PHC = re.compile(r"\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+)\$"
                  r"([A-Za-z0-9+/]+)", re.ASCII)


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt's cost: n = 2**log_n blocks of 128 * r bytes (memory: 128 * r * n bytes,
    16 MiB for the defaults, Colin Percival's interactive-login figures), p lanes."""

    log_n: int = 14
    r: int = 8
    p: int = 1

    @property
    def memory(self) -> int:
        return 128 * self.r * (1 << self.log_n)


DEFAULT_PARAMS: Final = ScryptParams()


class HasherBusy(Exception):
    """The pool has its most hashes in flight: refuse the login, do not queue it."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt,
                          n=1 << params.log_n, r=params.r, p=params.p, dklen=KEY_BYTES,
                          maxmem=2 * params.memory)


def check_password(password: str) -> str | None:
    """Why a new password is refused (a bad_field message), or None when it will do."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"a password has at least {MIN_PASSWORD_CHARS} characters"
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        return f"a password has at most {MAX_PASSWORD_BYTES} bytes"
    return None


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS,
                  salt: bytes | None = None) -> str:
    """The stored form of a password: slow (run it off the loop: `Hasher`)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    key = _scrypt(password, salt, params)
    return f"$scrypt$ln={params.log_n},r={params.r},p={params.p}${_b64(salt)}${_b64(key)}"


def parse_hash(stored: str) -> tuple[ScryptParams, bytes, bytes] | None:
    """The parameters, salt and key of a stored hash; None if it is not one of ours."""
    match = _PHC.fullmatch(stored)
    if match is None:
        return None
    log_n, r, p = int(match[1]), int(match[2]), int(match[3])
    if not (1 <= log_n <= 24 and r >= 1 and p >= 1) \
            or ScryptParams(log_n, r, p).memory > MAX_MEMORY:
        return None
    try:
        return ScryptParams(log_n, r, p), _unb64(match[4]), _unb64(match[5])
    except binascii.Error:
        return None


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from; slow, like hash_password.
    The keys are compared in constant time; a stored value we cannot read matches
    nothing."""
    parsed = parse_hash(stored)
    if parsed is None:
        return False
    params, salt, key = parsed
    return hmac.compare_digest(_scrypt(password, salt, params), key)


def needs_rehash(stored: str, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    """Whether a hash that just verified should be stored again with `params`."""
    parsed = parse_hash(stored)
    return parsed is None or parsed[0] != params


class Hasher:
    """Password hashes on `workers` threads (default: one per CPU but one), at most
    `max_pending` in flight (running or waiting for a thread); past that `HasherBusy`
    at once. Memory in use is at most `workers` times the scrypt memory (16 MiB each
    by default)."""

    def __init__(self, params: ScryptParams = DEFAULT_PARAMS, *, workers: int | None = None,
                 max_pending: int = 32) -> None:
        self.params = params
        self.max_pending = max(1, max_pending)
        self.pending = 0  # hashes submitted and not finished (loop thread only)
        self.refused = 0  # hashes refused because `max_pending` were in flight
        # Every CPU but one (at least one): the event loop keeps a CPU to itself however
        # many logins come, and they wait for a thread instead (at most max_pending).
        self.workers = workers or max(1, (os.cpu_count() or 2) - 1)
        self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                        thread_name_prefix="password-hash")

    async def hash(self, password: str) -> str:
        """The stored form of a new password (register, password change)."""
        return await self._submit(functools.partial(hash_password, password, self.params))

    async def verify(self, password: str, stored: str) -> bool:
        """Whether `password` matches `stored` (a login, an unregister)."""
        return await self._submit(functools.partial(verify_password, password, stored))

    async def _submit(self, work: Callable[[], T]) -> T:
        if self.pending >= self.max_pending:
            self.refused += 1
            raise HasherBusy(f"{self.pending} password hashes are in flight")
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)
        finally:
            self.pending -= 1

    def close(self) -> None:
        """Finish the hashes running, drop those not started."""
        self._pool.shutdown(wait=True, cancel_futures=True)
