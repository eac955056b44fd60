"""Adaptive bundle size: shrink at once when the platform says a bundle is too big, grow back slowly."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_TOO_BIG = re.compile(r"too (many|large|big)|entries.*(exceed|limit|maximum)|payload|request entity", re.I)
# Statuses a server uses for "this bundle is too big" rather than "this content is wrong".
TOO_LARGE_STATUSES = frozenset({413})


def says_too_large(status: int | None, outcome: dict[str, Any] | None) -> bool:
    """Does a refusal mean "send fewer entries"? 413, issue code too-costly, or words to that effect."""
    if status in TOO_LARGE_STATUSES:
        return True
    for issue in (outcome or {}).get("issue", []) or []:
        if issue.get("code") == "too-costly":
            return True
        text = f"{(issue.get('details') or {}).get('text', '')} {issue.get('diagnostics', '')}"
        if _TOO_BIG.search(text):
            return True
    return False


@dataclass
class BundleSizer:
    """How many entries go in the next bundle (servers limit entries, Patients and Devices included).

    A refusal at size n sets a ceiling of n-1 and halves the size (or drops to the largest size that has
    passed, if that is bigger); after `grow_after` successful bundles the
    size creeps up by one towards the ceiling; after `relax_after` successes at the ceiling the ceiling itself
    is raised by one, in case the server's limit was temporary. Never above `maximum`, never below 1.
    """

    maximum: int
    current: int = 0
    ceiling: int = 0
    grow_after: int = 8
    relax_after: int = 200
    largest_success: int = 0
    _streak: int = 0

    def __post_init__(self) -> None:
        self.maximum = max(1, self.maximum)
        self.current = self.current or self.maximum
        self.ceiling = self.ceiling or self.maximum

    def refused(self, size: int) -> None:
        """The platform refused a bundle of `size` entries as too large."""
        if size <= 1:
            return
        self.ceiling = max(1, min(self.ceiling, size - 1))
        if self.largest_success >= size:
            self.largest_success = 0  # the server's limit went down: what passed before proves nothing
        # Halve when nothing smaller is known to pass; else fall back to the largest size that passed.
        new = max(1, min(self.current, max(size // 2, self.largest_success), self.ceiling))
        if new != self.current:
            log.info("platform refused a bundle of %d records as too large; bundles now %d", size, new)
        self.current = new
        self._streak = 0

    def succeeded(self, size: int) -> None:
        self.largest_success = max(self.largest_success, size)
        if size < self.current:
            return  # a bisected fragment says nothing about whether bigger bundles pass
        self._streak += 1
        if self.current < self.ceiling and self._streak >= self.grow_after:
            self.current += 1
            self._streak = 0
        elif self.current == self.ceiling < self.maximum and self._streak >= self.relax_after:
            self.ceiling += 1
            self.current += 1
            self._streak = 0
