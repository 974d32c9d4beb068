"""chatd.passwords (PROTOCOL.txt 18.6): the stored form, verification, and the pool that
keeps hashing off the event loop, with a real event loop and real scrypt."""

from __future__ import annotations

import asyncio

import pytest

from chatd.passwords import (
    DEFAULT_PARAMS,
    Hasher,
    HasherBusy,
    ScryptParams,
    check_password,
    hash_password,
    needs_rehash,
    parse_hash,
    verify_password,
)

# Cheap parameters where the cost is not what a test is about (2**10 blocks: 1 MiB).
FAST = ScryptParams(log_n=10, r=8, p=1)


def test_the_stored_form_names_its_parameters_and_verifies() -> None:
    stored = hash_password("correct horse", DEFAULT_PARAMS, salt=b"\x01" * 16)
    assert stored.startswith("$scrypt$ln=14,r=8,p=1$AQEBAQEBAQEBAQEBAQEBAQ$")
    params, salt, key = parse_hash(stored) or (None, b"", b"")
    assert params == DEFAULT_PARAMS and salt == b"\x01" * 16 and len(key) == 32
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert not verify_password("", stored)
    assert "correct horse" not in stored


def test_each_hash_has_its_own_salt() -> None:
    first, second = hash_password("same", FAST), hash_password("same", FAST)
    assert first != second
    assert verify_password("same", first) and verify_password("same", second)


def test_raising_the_parameters_later_keeps_old_hashes_working() -> None:
    old = hash_password("pw-of-2026", FAST)
    assert verify_password("pw-of-2026", old)  # read with its own parameters
    assert needs_rehash(old, DEFAULT_PARAMS)
    assert not needs_rehash(old, FAST)


@pytest.mark.parametrize("stored", ["", "plain", "$scrypt$ln=14,r=8,p=1$!!$!!",
                                    "$scrypt$ln=99,r=8,p=1$AQ$AQ", "$argon2id$v=19$x$y",
                                    "$scrypt$ln=24,r=8,p=1$AQ$AQ"])
def test_a_stored_value_that_is_not_a_hash_matches_nothing(stored: str) -> None:
    assert not verify_password("anything", stored)
    assert needs_rehash(stored)


def test_new_passwords_are_bounded() -> None:
    assert check_password("12345") is not None  # too short
    assert check_password("123456") is None
    assert check_password("ü" * 128) is None  # 256 bytes
    assert check_password("ü" * 129) is not None
    assert check_password("пароль") is None  # characters, not bytes, for the minimum


async def test_hashes_run_off_the_loop_which_keeps_running_other_callbacks() -> None:
    """The loop runs a ping-like ticker (a timer every millisecond) while 20 real hashes
    of the default parameters run: it ticks between their completions. Were the hashes
    run on the loop, no tick could come between two of them."""
    hasher = Hasher(DEFAULT_PARAMS, workers=2, max_pending=64)
    ticks = 0
    ticks_at_done: list[int] = []

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    async def one(i: int) -> str:
        stored = await hasher.hash(f"password {i}")
        ticks_at_done.append(ticks)
        return stored

    stop = asyncio.Event()
    task = asyncio.create_task(ticker(stop))
    try:
        stored = await asyncio.gather(*(one(i) for i in range(20)))
        assert await hasher.verify("password 7", stored[7])
        assert not await hasher.verify("password 7", stored[8])
    finally:
        stop.set()
        await task
        hasher.close()
    assert hasher.pending == 0
    assert len(set(ticks_at_done)) > 1, ticks_at_done  # the loop ran between hashes


async def test_past_the_bound_a_hash_is_refused_at_once() -> None:
    hasher = Hasher(DEFAULT_PARAMS, workers=1, max_pending=3)
    try:
        running = [asyncio.create_task(hasher.hash(f"pw {i}")) for i in range(3)]
        await asyncio.sleep(0)  # they are in flight
        assert hasher.pending == 3
        with pytest.raises(HasherBusy):
            await hasher.verify("pw", "$scrypt$ln=10,r=8,p=1$AQ$AQ")
        assert hasher.refused == 1
        stored = await asyncio.gather(*running)
        assert hasher.pending == 0
        assert await hasher.verify("pw 0", stored[0])  # room again
    finally:
        hasher.close()
