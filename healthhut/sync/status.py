"""What `healthhut sync status` shows: counts by state, backlog age, last success and error, circuit state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from healthhut.sync.worker import STATE_CIRCUIT, STATE_LAST_ERROR, STATE_LAST_SUCCESS


class StatusSource(Protocol):
    def outbox_counts(self) -> dict[Any, int]: ...
    def oldest_pending_at(self) -> datetime | None: ...
    def get_state(self, key: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class SyncStatus:
    counts: dict[str, int]
    oldest_pending_age_s: float | None
    last_success_at: str | None
    last_error_at: str | None
    last_error: str | None
    circuit: str
    circuit_failures: int

    @property
    def deliverable(self) -> int:
        """Rows the worker still has to deliver (pending or in flight); held and dead need a person."""
        return self.counts.get("pending", 0) + self.counts.get("sending", 0)

    def to_json(self) -> dict[str, Any]:
        return {"counts": dict(sorted(self.counts.items())), "deliverable": self.deliverable,
                "oldest_pending_age_s": self.oldest_pending_age_s, "last_success_at": self.last_success_at,
                "last_error_at": self.last_error_at, "last_error": self.last_error,
                "circuit": {"state": self.circuit, "consecutive_failures": self.circuit_failures}}


def readable_age(seconds: float) -> str:
    """A backlog age as a person reads it: "40 s", "5 min", "3 h 12 min", "2 d 3 h" (two units at most)."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def _loads(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_status(store: StatusSource, *, now: datetime) -> SyncStatus:
    counts = {str(getattr(state, "value", state)): n for state, n in store.outbox_counts().items()}
    oldest = store.oldest_pending_at()
    error = _loads(store.get_state(STATE_LAST_ERROR))
    circuit = _loads(store.get_state(STATE_CIRCUIT))
    return SyncStatus(
        counts=counts,
        oldest_pending_age_s=None if oldest is None else round(max(0.0, (now - oldest).total_seconds()), 1),
        last_success_at=store.get_state(STATE_LAST_SUCCESS),
        last_error_at=error.get("at"),
        last_error=error.get("reason"),
        circuit=str(circuit.get("state", "closed")),
        circuit_failures=int(circuit.get("consecutive_failures", 0)),
    )
