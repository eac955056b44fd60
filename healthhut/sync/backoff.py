"""Retry delays: exponential backoff with full jitter and a cap, with the server's Retry-After as a floor."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """`delay(attempt)` is uniform in [0, min(cap, base * multiplier**attempt)] ("full jitter").

    Full jitter spreads the retries of 58 huts that lost the platform at the same moment, so they do not all
    come back in the same second. A server's Retry-After is honoured as a minimum, itself bounded by
    `max_retry_after` so a misconfigured proxy cannot park the queue for a week.
    """

    base: float = 2.0
    multiplier: float = 2.0
    cap: float = 600.0
    max_retry_after: float = 3600.0

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the jittered delay before retry number `attempt` (0 = first retry)."""
        exponent = min(max(attempt, 0), 64)  # 2**64 * base already exceeds any sane cap
        return min(self.cap, self.base * self.multiplier**exponent)

    def delay(self, attempt: int, *, retry_after: float | None = None,
              rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before the next try; `rand` returns a float in [0, 1) (injectable for tests)."""
        jittered = rand() * self.ceiling(attempt)
        if retry_after is None:
            return jittered
        return max(jittered, min(max(retry_after, 0.0), self.max_retry_after))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date; None when absent or unparseable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now or datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())
