"""A circuit breaker for the platform: stop sending while it is down, probe it, log only state changes."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from healthhut.sync.backoff import BackoffPolicy

log = logging.getLogger(__name__)


class CircuitState(StrEnum):
    CLOSED = "closed"        # sending normally
    OPEN = "open"            # platform considered down; nothing is sent until `probe_at`
    HALF_OPEN = "half_open"  # one probe bundle in flight


@dataclass
class CircuitBreaker:
    """Opens after `failure_threshold` consecutive transient failures; then one probe per backoff interval.

    Times are plain seconds from an injected monotonic-ish clock (the worker passes `clock()`), so tests
    drive it without sleeping. Exactly one warning is logged when the platform goes down and one info line
    when it comes back, however many sends fail in between.
    """

    failure_threshold: int = 3
    probe_backoff: BackoffPolicy = field(default_factory=lambda: BackoffPolicy(base=5.0, cap=300.0))
    rand: Callable[[], float] = random.random
    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    opened_at: float | None = None
    probe_at: float | None = None
    failed_probes: int = 0
    last_reason: str | None = None

    def allow(self, now: float) -> bool:
        """May a bundle be sent now? In OPEN state this turns into HALF_OPEN once the probe time is reached."""
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.OPEN and self.probe_at is not None and now >= self.probe_at:
            self.state = CircuitState.HALF_OPEN
            return True
        return False

    def seconds_until_probe(self, now: float) -> float:
        if self.state is CircuitState.CLOSED or self.probe_at is None:
            return 0.0
        return max(0.0, self.probe_at - now)

    def probe_skipped(self) -> None:
        """Nothing was due to probe with: stay open; the next due record becomes the probe."""
        if self.state is CircuitState.HALF_OPEN:
            self.state = CircuitState.OPEN

    def record_success(self, now: float) -> None:
        if self.state is not CircuitState.CLOSED:
            down_for = now - self.opened_at if self.opened_at is not None else 0.0
            log.info("platform reachable again after %.0f s (%d failed probes)", down_for, self.failed_probes)
        self.state = CircuitState.CLOSED
        self.consecutive_failures = 0
        self.failed_probes = 0
        self.opened_at = None
        self.probe_at = None
        self.last_reason = None

    def record_failure(self, now: float, *, reason: str, retry_after: float | None = None) -> None:
        """A transient failure (timeout, connection error, 408/429/5xx)."""
        self.last_reason = reason
        self.consecutive_failures += 1
        if self.state is CircuitState.HALF_OPEN:
            self.failed_probes += 1
            self._schedule_probe(now, retry_after)
            self.state = CircuitState.OPEN
        elif self.state is CircuitState.CLOSED and self.consecutive_failures >= self.failure_threshold:
            self.state = CircuitState.OPEN
            self.opened_at = now
            self._schedule_probe(now, retry_after)
            log.warning("platform unreachable (%s); pausing delivery, probing every few minutes", reason)
        elif self.state is CircuitState.OPEN:
            self._schedule_probe(now, retry_after)

    def _schedule_probe(self, now: float, retry_after: float | None) -> None:
        self.probe_at = now + self.probe_backoff.delay(self.failed_probes, retry_after=retry_after,
                                                        rand=self.rand)

    def snapshot(self) -> str:
        """JSON for the store's state table (read by `healthhut sync status`, and by `restore` at a restart)."""
        return json.dumps({"state": self.state.value, "consecutive_failures": self.consecutive_failures,
                           "failed_probes": self.failed_probes, "last_reason": self.last_reason,
                           "opened_at": self.opened_at, "probe_at": self.probe_at})

    def restore(self, text: str | None, now: float) -> bool:
        """Take over a predecessor's snapshot (the sync process restarted): a platform it found down is still
        presumed down, so the first send after a restart is one probe at the scheduled time (never later
        than one probe interval from now), not a full-speed burst. No log line: the outage was logged once."""
        try:
            saved = json.loads(text) if text else {}
            state = CircuitState(saved["state"])
            failures, probes = int(saved.get("consecutive_failures", 0)), int(saved.get("failed_probes", 0))
        except (ValueError, KeyError, TypeError):
            return False
        if state is CircuitState.CLOSED:
            return False
        self.state = CircuitState.OPEN  # a probe in flight died with the process: probe again
        self.consecutive_failures, self.failed_probes = failures, probes
        self.last_reason = saved.get("last_reason")
        opened, probe = saved.get("opened_at"), saved.get("probe_at")
        self.opened_at = float(opened) if isinstance(opened, int | float) else now
        latest = now + self.probe_backoff.cap
        self.probe_at = min(float(probe), latest) if isinstance(probe, int | float) else now
        return True
