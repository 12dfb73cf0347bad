"""The waiting helper: returns the first value that holds, or fails naming what it waited for and what it saw."""

from __future__ import annotations

import itertools

import pytest

from tests.support import eventually, eventually_sync


async def test_eventually_returns_the_first_value_that_holds() -> None:
    counter = itertools.count()
    assert await eventually(lambda: next(counter), lambda n: n >= 3, what="three", every=0) == 3

    async def probe() -> str:
        return "ready"

    assert await eventually(probe, what="ready") == "ready"


async def test_eventually_names_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"waiting for case 7 to be paid; last value seen: 'paying'"):
        await eventually(lambda: "paying", lambda s: s == "paid", what="case 7 to be paid", timeout=0.2)


def test_eventually_sync_treats_ignored_errors_as_not_yet() -> None:
    calls = itertools.count()

    def flaky() -> int:
        n = next(calls)
        if n < 2:
            raise ConnectionError("not yet")
        return n

    assert eventually_sync(flaky, what="an answer", every=0, ignore=(ConnectionError,)) == 2
    with pytest.raises(AssertionError, match="ConnectionError"):
        eventually_sync(flaky_always, what="x", timeout=0.1, ignore=(ConnectionError,))


def flaky_always() -> int:
    raise ConnectionError("down")
