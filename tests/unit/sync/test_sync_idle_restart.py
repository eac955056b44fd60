"""Between passes and across restarts: the worker sleeps until the next row is due (capped by idle_poll),
and a restarted worker takes over the circuit its predecessor left open. Injected clock, no real sleeping.

Real SQLite store and real FhirClient; httpx.MockTransport plays the platform so the test controls time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sync_support import FakeClock, fill_store, platform_config

from healthhut.records.store import OutboxState, RecordStore
from healthhut.sync.backoff import BackoffPolicy
from healthhut.sync.circuit import CircuitBreaker, CircuitState
from healthhut.sync.fhir_client import FhirClient
from healthhut.sync.status import readable_age
from healthhut.sync.worker import STATE_CIRCUIT, SyncSettings, SyncWorker

OK_BUNDLE = {"resourceType": "Bundle", "type": "transaction-response"}
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    s = RecordStore.open(tmp_path / "records.db")
    yield s
    s.close()


def worker_for(store: RecordStore, clock: FakeClock, handler: Handler, *, idle_poll: float,
               circuit: CircuitBreaker | None = None) -> tuple[SyncWorker, FhirClient]:
    client = FhirClient(platform_config("https://fhir.example/R4"), transport=httpx.MockTransport(handler),
                        sleep=clock.sleep)
    settings = SyncSettings(batch_size=50, concurrency=1, idle_poll=idle_poll,
                            backoff=BackoffPolicy(base=2.0, cap=900.0))
    return SyncWorker(store, client, settings, now=clock, sleep=clock.sleep, rand=lambda: 0.0,
                      circuit=circuit or CircuitBreaker(failure_threshold=10_000)), client


async def drain(worker: SyncWorker, store: RecordStore) -> None:
    async def remaining() -> int:
        counts = await asyncio.to_thread(store.outbox_counts)
        return counts[OutboxState.PENDING] + counts[OutboxState.SENDING]

    await worker.drain(until_empty=True, remaining=remaining, max_wait=24 * 3600)


# ---- RecordStore.next_due_at -------------------------------------------------------------------------------
def test_next_due_at_is_the_earliest_retry_time_or_lease_expiry(store: RecordStore) -> None:
    assert store.next_due_at() is None
    fill_store(store, 3)  # 6 pending rows, due when stored
    clock = FakeClock()
    now = clock.now
    first_due = store.next_due_at()
    assert first_due is not None and first_due <= now
    claimed = store.claim_batch(limit=6, now=now, lease=timedelta(minutes=5), worker="w")
    ids = [c.outbox_id for c in claimed]
    assert store.next_due_at() == now + timedelta(minutes=5)  # only leases left: a crashed worker's rows
    store.schedule_retry(ids[:2], now=now, next_attempt_at=now + timedelta(seconds=40), error="e")
    store.schedule_retry(ids[2:4], now=now, next_attempt_at=now + timedelta(seconds=90), error="e")
    assert store.next_due_at() == now + timedelta(seconds=40)
    store.mark_sent(ids[:2], now=now)
    store.mark_dead(ids[4], now=now, reason="r", outcome_json=None)  # sent and dead rows never come due
    store.mark_sent(ids[5:], now=now)
    assert store.next_due_at() == now + timedelta(seconds=90)
    store.mark_sent(ids[2:4], now=now)
    assert store.next_due_at() is None


# ---- the idle sleep ----------------------------------------------------------------------------------------
async def test_idle_sleep_ends_when_the_next_retry_is_due_not_at_the_poll(store: RecordStore) -> None:
    await asyncio.to_thread(fill_store, store, 2)
    clock = FakeClock()
    sent_at: list[float] = []
    start = clock.now

    async def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append((clock.now - start).total_seconds())
        if len(sent_at) == 1:
            return httpx.Response(503, headers={"Retry-After": "7"})
        return httpx.Response(200, json=OK_BUNDLE)

    worker, client = worker_for(store, clock, handler, idle_poll=60.0)
    async with client:
        await drain(worker, store)
    assert sent_at == [0.0, 7.0]   # resent the moment Retry-After allowed, not after a 60 s poll
    assert clock.slept == [7.0]
    assert (await asyncio.to_thread(store.outbox_counts))[OutboxState.SENT] == 4


async def test_idle_sleep_is_capped_by_idle_poll(store: RecordStore) -> None:
    await asyncio.to_thread(fill_store, store, 1)
    clock = FakeClock()
    calls: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(429, headers={"Retry-After": "200"}) if len(calls) == 1 else \
            httpx.Response(200, json=OK_BUNDLE)

    worker, client = worker_for(store, clock, handler, idle_poll=60.0)
    async with client:
        await drain(worker, store)
    # the gateway may store new readings meanwhile: look at least every idle_poll seconds
    assert clock.slept == [60.0, 60.0, 60.0, 20.0]
    assert len(calls) == 2


async def test_run_forever_sleeps_through_the_injected_sleep_and_stops(store: RecordStore) -> None:
    clock = FakeClock()
    stop = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=OK_BUNDLE)

    worker, client = worker_for(store, clock, handler, idle_poll=30.0)

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        if len(clock.slept) == 1:  # a reading arrives, already waiting for a retry in 4 s
            await asyncio.to_thread(fill_store, store, 1)
            ids = [c.outbox_id for c in await asyncio.to_thread(
                store.claim_batch, limit=10, now=clock.now, lease=timedelta(minutes=5), worker="gateway")]
            await asyncio.to_thread(store.schedule_retry, ids, now=clock.now,
                                    next_attempt_at=clock.now + timedelta(seconds=4), error="e")
        if len(clock.slept) == 3:
            stop.set()
        await asyncio.sleep(0)

    worker._sleep = sleep
    async with client:
        await asyncio.wait_for(worker.run_forever(stop), timeout=20)
    assert clock.slept == [30.0, 4.0, 30.0]  # empty: idle_poll; then until the retry; then empty again
    assert (await asyncio.to_thread(store.outbox_counts))[OutboxState.SENT] == 2


# ---- the circuit across a restart ----------------------------------------------------------------------------
def test_circuit_snapshot_round_trip() -> None:
    old = CircuitBreaker(failure_threshold=2, rand=lambda: 0.5)
    old.record_failure(1000.0, reason="platform timed out")
    old.record_failure(1001.0, reason="platform timed out")
    assert old.state is CircuitState.OPEN and old.probe_at is not None
    new = CircuitBreaker(failure_threshold=2)
    assert new.restore(old.snapshot(), now=1010.0)
    assert (new.state, new.probe_at, new.opened_at) == (CircuitState.OPEN, old.probe_at, 1001.0)
    assert new.consecutive_failures == 2 and new.last_reason == "platform timed out"
    assert not new.allow(old.probe_at - 0.5) and new.allow(old.probe_at)
    # nothing to take over: a closed circuit, no snapshot, garbage; a probe far ahead is pulled in to the cap
    fresh = CircuitBreaker()
    assert not fresh.restore(CircuitBreaker().snapshot(), now=0.0)
    assert not fresh.restore(None, now=0.0) and not fresh.restore("{not json", now=0.0)
    assert fresh.state is CircuitState.CLOSED
    far = json.dumps({"state": "half_open", "probe_at": 10**9, "failed_probes": 4})
    assert fresh.restore(far, now=50.0)
    assert fresh.state is CircuitState.OPEN and fresh.probe_at == 50.0 + fresh.probe_backoff.cap


async def test_a_restarted_worker_probes_before_sending_at_full_speed(store: RecordStore,
                                                                     all_log_lines: list[str]) -> None:
    await asyncio.to_thread(fill_store, store, 40)
    clock = FakeClock()
    probe_at = clock.now.timestamp() + 30
    snapshot = json.dumps({"state": "open", "consecutive_failures": 5, "failed_probes": 1,
                           "last_reason": "platform connection failed (ConnectError)",
                           "opened_at": clock.now.timestamp() - 600, "probe_at": probe_at})
    await asyncio.to_thread(store.set_state, STATE_CIRCUIT, snapshot)
    requests: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        requests.append(clock.now.timestamp())
        return httpx.Response(200, json=OK_BUNDLE)

    worker, client = worker_for(store, clock, handler, idle_poll=60.0, circuit=CircuitBreaker(rand=lambda: 0.0))
    async with client:
        claimed, _ = await worker.run_pass()  # the restored circuit: nothing goes out before the probe time
        assert claimed == 0 and requests == []
        await drain(worker, store)
    assert requests[0] == probe_at  # the first send was the probe, at the predecessor's schedule
    assert worker.circuit.state is CircuitState.CLOSED
    assert (await asyncio.to_thread(store.outbox_counts))[OutboxState.SENT] == 80
    assert sum("reachable again after 630 s" in line for line in all_log_lines) == 1  # outage from its start


def test_readable_age() -> None:
    assert [readable_age(s) for s in (0, 42.6, 60, 300, 3599, 3600, 3 * 3600 + 12 * 60, 86_400,
                                      2 * 86_400 + 3 * 3600 + 59 * 60)] == \
        ["0 s", "42 s", "1 min", "5 min", "59 min", "1 h", "3 h 12 min", "1 d", "2 d 3 h"]
