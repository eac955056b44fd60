"""Suite-wide guards: no blocking call on an event loop, and a log capture that must never hold PHI."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_blocking_calls_on_the_loop() -> Iterator[None]:
    """Fail any test whose coroutine makes a blocking call (file, socket, sleep) on the running loop."""
    from blockbuster import blockbuster_ctx

    with blockbuster_ctx(scanned_modules=["healthhut"]) as bb:
        yield bb  # type: ignore[misc]


class _AllRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a broken log call is itself worth seeing
            self.lines.append(repr(record.msg))


@pytest.fixture
def all_log_lines() -> Iterator[list[str]]:
    """Every formatted log line emitted during the test, at any level, from any logger."""
    handler = _AllRecords()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    ours = logging.getLogger("healthhut")  # the CLI may have set it to WARNING in this process
    old_level, old_ours = root.level, ours.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    ours.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        ours.setLevel(old_ours)
