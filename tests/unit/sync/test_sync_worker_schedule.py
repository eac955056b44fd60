"""The durable retry schedule on an injected clock: Retry-After honoured, backoff capped, no real sleeping.

Real SQLite store and real FhirClient; httpx.MockTransport plays the platform so the test controls time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sync_support import FakeClock, fill_store, platform_config

from healthhut.records.store import OutboxState, RecordStore
from healthhut.sync.backoff import BackoffPolicy
from healthhut.sync.circuit import CircuitBreaker
from healthhut.sync.fhir_client import FhirClient
from healthhut.sync.status import read_status
from healthhut.sync.worker import SyncSettings, SyncWorker


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    s = RecordStore.open(tmp_path / "records.db")
    yield s
    s.close()


async def run(store: RecordStore, clock: FakeClock, handler, *, cap: float) -> SyncWorker:  # type: ignore[no-untyped-def]
    client = FhirClient(platform_config("https://fhir.example/R4"), transport=httpx.MockTransport(handler),
                        sleep=clock.sleep)
    settings = SyncSettings(batch_size=50, concurrency=1, idle_poll=1.0, backoff=BackoffPolicy(base=2.0, cap=cap))
    # a circuit that never opens isolates the per-record schedule under test
    worker = SyncWorker(store, client, settings, now=clock, sleep=clock.sleep, rand=lambda: 0.999,
                        circuit=CircuitBreaker(failure_threshold=10_000))

    async def remaining() -> int:
        counts = await asyncio.to_thread(store.outbox_counts)
        return counts[OutboxState.PENDING] + counts[OutboxState.SENDING]

    async with client:
        await worker.drain(until_empty=True, remaining=remaining, max_wait=24 * 3600)
    return worker


async def test_retry_after_is_a_floor_and_the_backoff_is_capped(store: RecordStore) -> None:
    await asyncio.to_thread(fill_store, store, 3)
    clock = FakeClock()
    requests: list[datetime] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        requests.append(clock.now)
        if len(requests) <= 9:
            return httpx.Response(503, headers={"Retry-After": "7"})
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response"})

    await run(store, clock, handler, cap=60.0)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(requests)]
    assert len(gaps) == 9
    assert all(gap >= 7.0 for gap in gaps), gaps            # never sooner than the server asked
    assert all(gap <= 60.0 + 1.0 for gap in gaps), gaps     # never longer than the cap (+ one idle poll)
    assert max(gaps) >= 59.0                                # and the exponential did reach the cap
    counts = await asyncio.to_thread(store.outbox_counts)
    assert counts[OutboxState.SENT] == 6
    assert clock.slept and max(clock.slept) <= 60.0         # every wait went through the injected sleep


async def test_long_retry_after_beats_the_jitter(store: RecordStore) -> None:
    await asyncio.to_thread(fill_store, store, 1)
    clock = FakeClock()
    requests: list[datetime] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        requests.append(clock.now)
        if len(requests) == 1:
            return httpx.Response(429, headers={"Retry-After": "600"})
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response"})

    await run(store, clock, handler, cap=30.0)
    assert (requests[1] - requests[0]).total_seconds() >= 600
    status = await asyncio.to_thread(read_status, store, now=clock.now)
    assert status.deliverable == 0 and status.last_error == "platform answered 429"
