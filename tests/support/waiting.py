"""Waiting for something that happens on another thread or process (a change feed's
listener, a server): poll, with a deadline that fails the test."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

#: The default deadline, in seconds: generous, these waits are not measurements.
DEADLINE = 5.0


def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE, interval: float = 0.002) -> float:
    """Poll ``condition`` every ``interval`` seconds until true; return the seconds it took
    (fails the test after ``timeout``)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(interval)
    return time.monotonic() - start
