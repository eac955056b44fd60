"""Backoff (full jitter, cap, Retry-After), the circuit breaker and the adaptive bundle size: pure logic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from healthhut.sync.backoff import BackoffPolicy, parse_retry_after
from healthhut.sync.circuit import CircuitBreaker, CircuitState
from healthhut.sync.sizing import BundleSizer, says_too_large


def test_full_jitter_spans_zero_to_the_exponential_ceiling() -> None:
    policy = BackoffPolicy(base=2.0, multiplier=2.0, cap=600.0)
    assert policy.delay(0, rand=lambda: 0.0) == 0.0
    assert policy.delay(3, rand=lambda: 0.5) == pytest.approx(8.0)        # 0.5 * 2 * 2**3
    assert policy.delay(3, rand=lambda: 0.999) == pytest.approx(15.984)


def test_cap_bounds_every_delay_even_after_many_attempts() -> None:
    policy = BackoffPolicy(base=2.0, cap=600.0)
    assert policy.ceiling(9) == 600.0
    assert policy.ceiling(10_000) == 600.0
    assert max(policy.delay(n, rand=lambda: 0.9999) for n in range(200)) <= 600.0


def test_retry_after_is_a_floor_bounded_by_max_retry_after() -> None:
    policy = BackoffPolicy(base=2.0, cap=60.0, max_retry_after=3600.0)
    assert policy.delay(0, retry_after=120, rand=lambda: 0.5) == 120.0     # server asked for more than jitter
    assert policy.delay(8, retry_after=1, rand=lambda: 0.5) == 30.0       # jitter already longer
    assert policy.delay(0, retry_after=10 ** 9, rand=lambda: 0.5) == 3600.0


@pytest.mark.parametrize(("header", "expected"), [
    ("120", 120.0), (" 7 ", 7.0), ("Sun, 01 Mar 2026 08:02:00 GMT", 120.0),
    ("Sun, 01 Mar 2026 07:00:00 GMT", 0.0), ("soon", None), ("", None), (None, None), ("-5", None),
])
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected


def test_circuit_opens_after_threshold_logs_once_and_recovers_once(all_log_lines: list[str]) -> None:
    breaker = CircuitBreaker(failure_threshold=3, probe_backoff=BackoffPolicy(base=10, cap=100), rand=lambda: 1.0)
    for t in range(10):
        if breaker.allow(t):
            breaker.record_failure(t, reason="timeout")
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow(11)               # probe at 2 + 10
    assert breaker.allow(12)                    # the probe
    assert breaker.state is CircuitState.HALF_OPEN
    assert not breaker.allow(12)                # only one probe in flight
    breaker.record_failure(12, reason="timeout")
    assert breaker.state is CircuitState.OPEN
    assert breaker.seconds_until_probe(12) == 20  # next probe further away (10 * 2**1)
    assert breaker.allow(32)
    breaker.record_success(33)
    assert breaker.state is CircuitState.CLOSED and breaker.allow(33)
    down = [line for line in all_log_lines if "platform unreachable" in line]
    up = [line for line in all_log_lines if "reachable again" in line]
    assert len(down) == 1 and len(up) == 1


def test_circuit_honours_retry_after_for_its_probe() -> None:
    breaker = CircuitBreaker(failure_threshold=1, probe_backoff=BackoffPolicy(base=1, cap=5), rand=lambda: 0.0)
    breaker.record_failure(0, reason="503", retry_after=90)
    assert not breaker.allow(89) and breaker.allow(90)


def test_probe_with_nothing_due_keeps_the_circuit_open() -> None:
    breaker = CircuitBreaker(failure_threshold=1, rand=lambda: 0.0)
    breaker.record_failure(0, reason="x")
    assert breaker.allow(0)
    breaker.probe_skipped()
    assert breaker.state is CircuitState.OPEN


def test_sizer_shrinks_at_once_and_grows_back_slowly_to_the_ceiling() -> None:
    sizer = BundleSizer(maximum=50, grow_after=3, relax_after=10)
    sizer.refused(50)
    assert sizer.current == 25
    sizer.refused(25)
    sizer.refused(12)
    assert sizer.current == 6 and sizer.ceiling == 11
    for _ in range(3):
        sizer.succeeded(6)
    assert sizer.current == 7
    sizer.refused(7)
    assert (sizer.current, sizer.ceiling) == (6, 6)   # straight back to the largest size that passed
    for _ in range(9):
        sizer.succeeded(6)
    assert sizer.current == 6                          # at the ceiling, not beyond
    sizer.succeeded(6)                                 # relax_after reached: try one more
    assert (sizer.current, sizer.ceiling) == (7, 7)
    sizer.succeeded(1)                                 # a bisected fragment does not count
    assert sizer.current == 7


def test_sizer_forgets_old_successes_when_the_server_limit_drops() -> None:
    sizer = BundleSizer(maximum=20, grow_after=1)
    sizer.succeeded(20)
    sizer.refused(20)                                  # limit now below what once passed
    assert sizer.current == 10 and sizer.largest_success == 0
    sizer.refused(10)
    assert sizer.current == 5


@pytest.mark.parametrize(("status", "outcome", "expected"), [
    (413, None, True),
    (400, {"issue": [{"code": "invalid", "details": {"text": "Transaction requires strict isolation but has "
                                                              "too many entries"}}]}, True),
    (400, {"issue": [{"code": "too-costly"}]}, True),
    (400, {"issue": [{"code": "structure", "details": {"text": "Invalid additional property"}}]}, False),
    (422, None, False),
])
def test_says_too_large(status: int, outcome: dict | None, expected: bool) -> None:
    assert says_too_large(status, outcome) is expected
