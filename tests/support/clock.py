"""A clock the test moves by hand, to pass as an engine's ``clock``."""

from __future__ import annotations

import time

T0 = 1_700_000_000.0


class FakeClock:
    """Seconds since the epoch, starting at ``now`` (a fixed instant by default) and moved
    only by :meth:`advance`."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    @classmethod
    def from_wall_clock(cls) -> FakeClock:
        """A clock starting at the current whole second (for stores that compare with real time)."""
        return cls(float(int(time.time())))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    @property
    def ms(self) -> int:
        """The current time in ms, as the stores keep it."""
        return int(self.now * 1000)
