"""Sync against the real (Medplum) FHIR server on loopback, through every fault the uplink can produce.

Each scenario ends by asking the server what it stored: every record exactly once, nothing else.
Backoff waits run on an injected clock; only the server's own latency is real time.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sync_support import (
    PHD_SYSTEM,
    FakeClock,
    FhirTestServer,
    fill_store,
    platform_config,
    server_or_skip,
)

from healthhut.records.store import OutboxState, RecordStore
from healthhut.sync.backoff import BackoffPolicy
from healthhut.sync.circuit import CircuitBreaker, CircuitState
from healthhut.sync.fhir_client import FhirClient
from healthhut.sync.worker import DrainReport, SyncSettings, SyncWorker


async def drain(store: RecordStore, server: FhirTestServer, clock: FakeClock, *, until_empty: bool = True,
                worker: SyncWorker | None = None, max_wait: float = 3600.0, **platform: Any) -> tuple[SyncWorker,
                                                                                                     DrainReport]:
    settings = SyncSettings(batch_size=50, concurrency=2, lease=timedelta(minutes=5), idle_poll=5.0,
                            bundle_type=platform.pop("bundle_type", "transaction"))
    async with FhirClient(platform_config(server.base_url, **platform), sleep=clock.sleep) as client:
        if worker is None:
            worker = SyncWorker(store, client, settings, now=clock, sleep=clock.sleep, rand=lambda: 0.5)
        worker.sender = client

        async def remaining() -> int:
            counts = await asyncio.to_thread(store.outbox_counts)
            return counts[OutboxState.PENDING] + counts[OutboxState.SENDING]

        report = await worker.drain(until_empty=until_empty, remaining=remaining, max_wait=max_wait)
    return worker, report


def assert_exactly_once(server: FhirTestServer, identifiers: list[str], *, missing: set[str] = frozenset()) -> None:
    stored = server.stored_identifiers()
    expected = {i: 1 for i in identifiers if i not in missing}
    assert stored == expected
    # and the way any platform client would check one of them: a FHIR search by identifier
    sample = identifiers[len(identifiers) // 2]
    assert server.search_total("Observation", f"{PHD_SYSTEM}|{sample}") == (0 if sample in missing else 1)


def outbox_states(store: RecordStore) -> dict[str, int]:
    return {state.value: n for state, n in store.outbox_counts().items() if n}


async def test_clean_drain_adapts_to_the_servers_entry_limit(fhir: FhirTestServer, store: RecordStore) -> None:
    # 80 Observations; Medplum refuses transactions with more than 8 conditional entries
    filled = await asyncio.to_thread(fill_store, store, 40)
    worker, report = await drain(store, fhir, FakeClock())
    assert_exactly_once(fhir, filled.identifiers)
    assert await asyncio.to_thread(outbox_states, store) == {"sent": 80}
    assert report.dead == 0
    assert worker.sizer.current <= 8  # never above what the server accepted: 8 conditional entries
    assert fhir.stats()["resources"]["Patient"] == 3
    assert fhir.stats()["resources"]["Device"] == 2


async def test_down_then_up_logs_once_each_way(fhir: FhirTestServer, store: RecordStore,
                                              all_log_lines: list[str]) -> None:
    filled = await asyncio.to_thread(fill_store, store, 10)
    clock = FakeClock()
    fhir.faults(down=True)
    worker, report = await drain(store, fhir, clock, max_wait=900)
    assert report.sent == 0
    assert worker.circuit.state is not CircuitState.CLOSED
    assert fhir.stored_identifiers() == {}
    fhir.faults(down=False)
    worker, report = await drain(store, fhir, clock, worker=worker)
    assert_exactly_once(fhir, filled.identifiers)
    assert worker.circuit.state is CircuitState.CLOSED
    assert sum("platform unreachable" in line for line in all_log_lines) == 1
    assert sum("platform reachable again" in line for line in all_log_lines) == 1
    assert not any("R100" in line or "AABBCCDDEE" in line for line in all_log_lines)  # no identifiers in logs


@pytest.mark.parametrize("code", [503, 429])
async def test_retry_after_is_honoured(fhir: FhirTestServer, store: RecordStore, code: int) -> None:
    filled = await asyncio.to_thread(fill_store, store, 5)
    clock = FakeClock()
    started = clock.now
    fhir.faults(status={"code": code, "retry_after": 120, "count": 2})
    await drain(store, fhir, clock)
    assert_exactly_once(fhir, filled.identifiers)
    # two refusals, each asking for 120 s: the worker never came back sooner
    assert (clock.now - started).total_seconds() >= 240
    assert fhir.stats()["refused"] == 2


async def test_responses_lost_after_commit(fhir: FhirTestServer, store: RecordStore) -> None:
    filled = await asyncio.to_thread(fill_store, store, 30)
    fhir.faults(drop_after_commit=6)
    await drain(store, fhir, FakeClock())
    assert fhir.stats()["dropped"] == 6
    assert_exactly_once(fhir, filled.identifiers)


async def test_connections_dropped_mid_request(fhir: FhirTestServer, store: RecordStore) -> None:
    filled = await asyncio.to_thread(fill_store, store, 30)
    fhir.faults(drop_before_commit=6)
    await drain(store, fhir, FakeClock())
    assert fhir.stats()["dropped"] == 6
    assert_exactly_once(fhir, filled.identifiers)


async def test_slow_responses_past_the_read_timeout(fhir: FhirTestServer, store: RecordStore) -> None:
    filled = await asyncio.to_thread(fill_store, store, 6)
    fhir.faults(slow_ms=1500, slow_count=2)
    _, report = await drain(store, fhir, FakeClock(), timeout_read=0.5)
    assert report.retried >= 1  # the worker saw timeouts...
    assert_exactly_once(fhir, filled.identifiers)  # ...and the committed-but-unanswered bundles did not double


async def test_server_bundle_limit_413_shrinks_bundles(fhir: FhirTestServer, store: RecordStore) -> None:
    filled = await asyncio.to_thread(fill_store, store, 20, patients=1, devices=1)
    fhir.faults(max_entries=5)
    worker, report = await drain(store, fhir, FakeClock())
    assert_exactly_once(fhir, filled.identifiers)
    assert report.dead == 0
    assert 3 <= worker.sizer.largest_success <= 5  # entries per bundle: up to the server's 5, not far below


def spoil(store_path: Path, identifier: str) -> int:
    """Make one stored Observation unacceptable to the server (an element FHIR does not define)."""
    with sqlite3.connect(store_path) as conn:
        row = conn.execute("SELECT id, resource_json FROM observations WHERE identifier = ?", (identifier,)).fetchone()
        conn.execute("UPDATE observations SET resource_json = ? WHERE id = ?",
                     (row[1][:-1] + ',"bogusElement":1}', row[0]))
        return int(row[0])


@pytest.mark.parametrize(("bundle_type", "batch_only_server"), [
    ("transaction", False),   # real transactions: a 4xx for the bundle, bisected
    ("batch", True),          # batch bundles: per-entry 4xx
    ("transaction", True),    # a server that runs transactions as batches: 200 with a failed entry inside
])
async def test_one_invalid_resource_is_dead_lettered_alone(store: RecordStore, tmp_path: Path, bundle_type: str,
                                                           batch_only_server: bool,
                                                           all_log_lines: list[str]) -> None:
    server = server_or_skip(batch_only=batch_only_server)
    try:
        filled = await asyncio.to_thread(fill_store, store, 12)
        bad = filled.identifiers[7]
        observation_id = await asyncio.to_thread(spoil, tmp_path / "records.db", bad)
        _, report = await drain(store, server, FakeClock(), bundle_type=bundle_type)
        assert report.dead == 1
        assert_exactly_once(server, filled.identifiers, missing={bad})
        dead = await asyncio.to_thread(store.dead_letters)
        assert [d.observation_id for d in dead] == [observation_id]
        assert "bogusElement" in (dead[0].outcome_json or "")  # the server's OperationOutcome is kept
        assert await asyncio.to_thread(outbox_states, store) == {"sent": 23, "dead": 1}
        assert not any(bad in line or "R100" in line for line in all_log_lines)
    finally:
        server.stop()


async def test_batch_mode_delivers_everything_once(store: RecordStore) -> None:
    server = server_or_skip(batch_only=True)
    try:
        filled = await asyncio.to_thread(fill_store, store, 40)
        server.faults(drop_after_commit=2)
        await drain(store, server, FakeClock(), bundle_type="batch")
        assert_exactly_once(server, filled.identifiers)
        assert server.stats()["resources"]["Patient"] == 3
    finally:
        server.stop()


async def test_held_records_are_never_sent(fhir: FhirTestServer, store: RecordStore) -> None:
    from sync_support import BASE_TIME

    from healthhut.readings import DeviceIdentity, Metric, Quantity, Reading, ReadingKind, TimeSource, Transport, Unit
    from healthhut.records.normalise import NormaliseSettings, device_resource, observations_for

    filled = await asyncio.to_thread(fill_store, store, 3)
    device = DeviceIdentity(Transport.BLE, address="AA:BB:CC:DD:EE:77", model="UA-651BLE")
    reading = Reading(kind=ReadingKind.BLOOD_PRESSURE, device=device, received_at=BASE_TIME,
                      measured_at=BASE_TIME, time_source=TimeSource.DEVICE,
                      values={Metric.SYSTOLIC: Quantity.of("120", Unit.MMHG),
                              Metric.DIASTOLIC: Quantity.of("80", Unit.MMHG)})
    drafts = await asyncio.to_thread(observations_for, reading, None, NormaliseSettings(site_id="hut-test"))
    await asyncio.to_thread(lambda: store.save_reading(reading, drafts, patient=None, patient_resource=None,
                                                       device_resource=device_resource(device), now=BASE_TIME))
    await drain(store, fhir, FakeClock())
    assert_exactly_once(fhir, filled.identifiers)
    assert await asyncio.to_thread(outbox_states, store) == {"sent": 6, "held": len(drafts)}


async def test_circuit_breaker_stops_hammering(fhir: FhirTestServer, store: RecordStore) -> None:
    await asyncio.to_thread(fill_store, store, 20)
    clock = FakeClock()
    fhir.faults(status={"code": 503, "retry_after": None, "count": 10_000})
    worker = SyncWorker(store, None, SyncSettings(batch_size=5, concurrency=1, idle_poll=5.0), now=clock,
                        sleep=clock.sleep, rand=lambda: 0.5,
                        circuit=CircuitBreaker(failure_threshold=3, probe_backoff=BackoffPolicy(base=30, cap=300),
                                               rand=lambda: 0.5))
    await drain(store, fhir, clock, worker=worker, max_wait=3600)
    # an hour of outage: 3 failures open the circuit, then probes every 15, 30, 60, 120 s and then every
    # 150 s (half the 300 s cap, as rand() = 0.5): about 30 requests, where retry-per-idle-poll would be 720
    refused = fhir.stats()["refused"]
    assert 20 <= refused <= 3 + 4 + 3600 / 150 + 1
    assert worker.circuit.state is CircuitState.OPEN


async def test_gzip_request_bodies_are_accepted(fhir: FhirTestServer, store: RecordStore) -> None:
    from healthhut.sync.bundles import prepare_record, transaction_bundle

    await asyncio.to_thread(fill_store, store, 2, patients=1, devices=1)
    clock = FakeClock()
    items = await asyncio.to_thread(store.claim_batch, limit=10, now=clock.now, lease=timedelta(minutes=1),
                                    worker="t")
    bundle = transaction_bundle([prepare_record(i) for i in items])
    async with FhirClient(platform_config(fhir.base_url), compress_requests=True) as client:
        reply = await client.post_bundle(bundle.body)
    assert reply.status == 200
    assert len(fhir.stored_identifiers()) == 4
