"""Test support for the BLE integration tests: a stepping gateway clock and collecting a driver's readings.

Imported by tests/integration/test_ble_* modules (tests/ is on sys.path via its conftest).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from healthhut.readings import Reading


class SteppingClock:
    """A gateway clock from 2024-06-24 22:00 UTC that advances `step` each time it is read."""

    def __init__(self, step: timedelta) -> None:
        self.step = step
        self.t = datetime(2024, 6, 24, 22, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.t += self.step
        return self.t


async def collect(readings: AsyncIterator[Reading]) -> list[Reading]:
    return [r async for r in readings]
