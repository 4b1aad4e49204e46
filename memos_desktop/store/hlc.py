"""Hybrid logical clock for the sync change log.

A timestamp is ``"<physical ms, 13 digits>:<counter, 6 digits>:<device id>"``: it sorts as text in
causal order, never goes backwards when the wall clock does, and ties break by device id so every
device orders every change the same way.

When the wall clock is behind the last stamp (it was set back, or another device's clock runs
ahead), the physical part stays where it was and the counter grows. The counter has six digits;
past 999999 the physical part moves on by one millisecond and the counter restarts at 0, so a
stamp stays strictly greater than the one before and still sorts as text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_COUNTER = 999_999


@dataclass(frozen=True, order=True)
class Timestamp:
    physical_ms: int
    counter: int
    device_id: str

    def __str__(self) -> str:
        return f"{self.physical_ms:013d}:{self.counter:06d}:{self.device_id}"

    @staticmethod
    def parse(text: str) -> Timestamp:
        pt, c, dev = text.split(":", 2)
        return Timestamp(int(pt), int(c), dev)


def _tick(physical_ms: int, counter: int, device_id: str) -> Timestamp:
    """The stamp at (``physical_ms``, ``counter``), carrying a full counter into the ms."""
    if counter > MAX_COUNTER:
        return Timestamp(physical_ms + 1, 0, device_id)
    return Timestamp(physical_ms, counter, device_id)


class HybridClock:
    def __init__(
        self,
        device_id: str,
        last: Timestamp | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.device_id = device_id
        self.last = last or Timestamp(0, 0, device_id)
        self._wall = wall

    def now(self) -> Timestamp:
        """A stamp strictly after ``last`` (in (physical, counter); the device id only breaks
        ties between devices)."""
        pt = int(self._wall() * 1000)
        if pt > self.last.physical_ms:
            ts = Timestamp(pt, 0, self.device_id)
        else:
            ts = _tick(self.last.physical_ms, self.last.counter + 1, self.device_id)
        self.last = ts
        return ts

    def observe(self, remote: Timestamp) -> Timestamp:
        """Merge a timestamp received from another device (for sync)."""
        pt = int(self._wall() * 1000)
        top = max(pt, self.last.physical_ms, remote.physical_ms)
        if top == self.last.physical_ms == remote.physical_ms:
            c = max(self.last.counter, remote.counter) + 1
        elif top == self.last.physical_ms:
            c = self.last.counter + 1
        elif top == remote.physical_ms:
            c = remote.counter + 1
        else:
            c = 0
        self.last = _tick(top, c, self.device_id)
        return self.last
