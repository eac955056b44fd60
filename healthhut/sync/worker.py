"""The sync worker: claim outbox rows with a lease, send them as Bundles, record what the platform said.

The durable retry schedule lives in each outbox row (`attempts`, `next_attempt_at`); this object only keeps
what may be lost at a crash: the circuit breaker, the adaptive bundle size and, in batch mode, the server ids
of Patients/Devices already created. A crash mid-send leaves rows in `sending` until their lease expires,
then any worker claims them again and resends: every entry is a conditional create, so nothing duplicates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from healthhut.errors import PermanentSyncError, TransientSyncError
from healthhut.sync.backoff import BackoffPolicy
from healthhut.sync.bundles import (
    AssembledBundle,
    BundleType,
    PreparedRecord,
    location_reference,
    prepare_record,
    prerequisite_bundle,
    response_entries,
    transaction_bundle,
)
from healthhut.sync.circuit import CircuitBreaker, CircuitState
from healthhut.sync.sizing import BundleSizer, says_too_large

log = logging.getLogger(__name__)

# 4xx answers that can be the content's fault; anything else (404 on the base, 405, 415) is configuration,
# and bisecting it would dead-letter the whole backlog.
CONTENT_STATUSES = frozenset({400, 409, 412, 413, 422})
MIN_IDLE = 0.1  # seconds: the shortest idle sleep between passes
MAX_RESOLVED = 10_000  # urn -> server id entries kept (patients and devices of one hut: far fewer)
_WAIT_PROBE = "waiting for the probe"
_WENT_DOWN = "platform unreachable"
_PASS_REASONS = frozenset({_WAIT_PROBE, _WENT_DOWN})  # rows handed back unsent, not failures of their own
STATE_LAST_SUCCESS = "sync.last_success"
STATE_LAST_ERROR = "sync.last_error"
STATE_CIRCUIT = "sync.circuit"
STATE_BUNDLE_SIZE = "sync.bundle_size"  # what the sizer learned, so a restart does not relearn it by refusals


class OutboxStore(Protocol):
    """The part of `RecordStore` the worker uses (all synchronous; called through asyncio.to_thread)."""

    def claim_batch(self, *, limit: int, now: datetime, lease: timedelta, worker: str) -> Sequence[Any]: ...
    def mark_sent(self, outbox_ids: Sequence[int], *, now: datetime) -> None: ...
    def schedule_retry(self, outbox_ids: Sequence[int], *, now: datetime, next_attempt_at: datetime,
                       error: str) -> None: ...
    def mark_dead(self, outbox_id: int, *, now: datetime, reason: str, outcome_json: str | None) -> None: ...
    def set_state(self, key: str, value: str) -> None: ...


class BundleSender(Protocol):
    async def post_bundle(self, body: bytes) -> Any: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SyncSettings:
    bundle_type: BundleType = "transaction"
    batch_size: int = 50
    concurrency: int = 2            # bundles in flight at once (on the one keep-alive pool)
    rounds_per_claim: int = 8       # bundles claimed per pass = concurrency * rounds_per_claim
    lease: timedelta = timedelta(minutes=5)
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    idle_poll: float = 5.0          # seconds between looks at an empty outbox
    worker_name: str = field(default_factory=lambda: f"sync-{os.getpid()}")


@dataclass
class PassOutcome:
    """What one pass decided, applied to the store in a few transactions after the sends."""

    sent: list[int] = field(default_factory=list)
    retry: list[tuple[list[int], float, str]] = field(default_factory=list)  # ids, delay s, reason
    dead: list[tuple[int, str, str | None]] = field(default_factory=list)    # id, reason, outcome json
    requests: int = 0


@dataclass
class DrainReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    requests: int = 0

    def add(self, claimed: int, outcome: PassOutcome) -> None:
        self.claimed += claimed
        self.sent += len(outcome.sent)
        self.retried += sum(len(ids) for ids, _, _ in outcome.retry)
        self.dead += len(outcome.dead)
        self.requests += outcome.requests


class SyncWorker:
    """Delivers the outbox; `run_pass` is one claim-send-record cycle, `drain`/`run_forever` loop it."""

    def __init__(self, store: OutboxStore, sender: BundleSender, settings: SyncSettings | None = None, *,
                 now: Callable[[], datetime] = utc_now, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rand: Callable[[], float] = random.random, circuit: CircuitBreaker | None = None) -> None:
        self.store = store
        self.sender = sender
        self.settings = settings or SyncSettings()
        self._now = now
        self._sleep = sleep
        self._rand = rand
        self.circuit = circuit or CircuitBreaker(rand=rand)
        # Sized in entries (what servers limit); a transaction may carry a Patient and Device per record.
        self.sizer = BundleSizer(maximum=3 * self.settings.batch_size)
        self._resolved: dict[str, str] = {}  # batch mode: urn -> "Type/id" known to exist on the server
        self._last_success_written = 0.0
        self._circuit_written: str | None = None
        self._size_written: str | None = None
        self._restored = False

    # ---- one pass -------------------------------------------------------------------------------------
    async def run_pass(self) -> tuple[int, PassOutcome]:
        """Claim what is due (unless the circuit is open), send it, record the results. Returns (claimed, ...)."""
        await self._restore_once()
        items, probing = await self._claim()
        if not items:
            return 0, PassOutcome()
        outcome = await self._send(items, probing)
        await asyncio.to_thread(self._record, outcome)
        return len(items), outcome

    async def _claim(self) -> tuple[Sequence[Any], bool]:
        """Due outbox items (none while the circuit is open) and whether they are a probe."""
        now = self._now()
        if not self.circuit.allow(now.timestamp()):
            return [], False
        probing = self.circuit.state is CircuitState.HALF_OPEN
        per_bundle = min(self.settings.batch_size, self.sizer.current)
        # Several rounds of bundles per claim: the claim and the result writes (each an fsync'd SQLite
        # transaction) are shared by all of them instead of stalling the uplink once per round.
        rounds = 1 if probing else max(1, self.settings.concurrency) * self.settings.rounds_per_claim
        items = await asyncio.to_thread(self.store.claim_batch, limit=per_bundle * rounds, now=now,
                                        lease=self.settings.lease, worker=self.settings.worker_name)
        if not items and probing:
            self.circuit.probe_skipped()
        return items, probing

    async def _send(self, items: Sequence[Any], probing: bool) -> PassOutcome:
        outcome = PassOutcome()
        attempts = {item.outbox_id: item.attempts for item in items}
        queue = deque(prepare_record(item) for item in items)
        if probing:
            await self._deliver(self._take(queue), attempts, outcome)
            if queue:  # claimed but not probed with: due again at once
                outcome.retry.append(([r.outbox_id for r in queue], 0.0, _WAIT_PROBE))
            return outcome

        async def sender() -> None:
            # Groups are cut when a sender is free, so they follow the bundle size as it adapts.
            while queue:
                if not self.circuit.allow(self._now().timestamp()):
                    # the platform went down during this pass: do not pile on
                    outcome.retry.append(([r.outbox_id for r in queue], 0.0, _WENT_DOWN))
                    queue.clear()
                    return
                await self._deliver(self._take(queue), attempts, outcome)

        await asyncio.gather(*(sender() for _ in range(max(1, self.settings.concurrency))))
        return outcome

    async def _stream(self, report: DrainReport, stop: asyncio.Event | None) -> None:
        """Passes back to back until a claim comes back empty, pipelined: while one pass's bundles are on the
        wire, the next claim and the previous pass's results are written to SQLite in threads."""
        await self._restore_once()
        recording: asyncio.Future[None] | None = None
        items, probing = await self._claim()
        try:
            while items:
                if stop is not None and stop.is_set():
                    await asyncio.to_thread(self._hand_back, items)
                    return
                next_claim = None if probing else asyncio.ensure_future(self._claim())
                outcome = await self._send(items, probing)
                if recording is not None:
                    await recording
                recording = asyncio.ensure_future(asyncio.to_thread(self._record, outcome))
                report.add(len(items), outcome)
                if next_claim is None:
                    await recording
                    items, probing = await self._claim()
                else:
                    items, probing = await next_claim
        finally:
            if recording is not None:
                await recording

    async def _restore_once(self) -> None:
        if not self._restored:
            self._restored = True
            await asyncio.to_thread(self._restore_state)

    def _restore_state(self) -> None:
        """What a predecessor learned: the circuit (a platform found down stays presumed down) and the size."""
        getter = getattr(self.store, "get_state", None)
        if getter is None:
            return
        circuit = getter(STATE_CIRCUIT)
        if self.circuit.restore(circuit, self._now().timestamp()):
            self._circuit_written = circuit
            log.info("platform was unreachable before this restart; probing before sending at full speed")
        text = getter(STATE_BUNDLE_SIZE)
        try:
            saved = json.loads(text) if text else {}
            current, ceiling = int(saved["current"]), int(saved["ceiling"])
        except (ValueError, KeyError, TypeError):
            return
        top = self.sizer.maximum  # batch_size may have changed since: stay within today's maximum
        self.sizer.current = max(1, min(current, top))
        self.sizer.ceiling = max(1, min(ceiling, top))
        self.sizer.largest_success = min(int(saved.get("largest_success", 0)), top)
        self._size_written = text

    def _hand_back(self, items: Sequence[Any]) -> None:
        """Claimed but not sent (stopping): due again at once for whoever runs next."""
        now = self._now()
        self.store.schedule_retry([i.outbox_id for i in items], now=now, next_attempt_at=now, error="not sent")

    def _take(self, queue: deque[PreparedRecord]) -> list[PreparedRecord]:
        """The next bundle's records: at most `batch_size` Observations and `sizer.current` entries in all
        (a transaction also carries the Patients/Devices not yet known to the server)."""
        limit = self.sizer.current
        group: list[PreparedRecord] = []
        support: set[str] = set()
        count_support = self.settings.bundle_type == "transaction"
        while queue and len(group) < self.settings.batch_size:
            extra = {s.full_url for s in queue[0].supporting
                     if s.full_url not in self._resolved and s.full_url not in support} if count_support else set()
            if group and len(group) + 1 + len(support) + len(extra) > limit:
                break
            group.append(queue.popleft())
            support |= extra
        return group

    def _record(self, outcome: PassOutcome) -> None:
        """Apply a pass's decisions (runs in a worker thread: these are SQLite writes)."""
        now = self._now()
        if outcome.sent:
            self.store.mark_sent(outcome.sent, now=now)
            if now.timestamp() - self._last_success_written >= 5.0:
                self.store.set_state(STATE_LAST_SUCCESS, now.isoformat())
                self._last_success_written = now.timestamp()
        for ids, delay, reason in outcome.retry:
            self.store.schedule_retry(ids, now=now, next_attempt_at=now + timedelta(seconds=delay), error=reason)
        for outbox_id, reason, outcome_json in outcome.dead:
            self.store.mark_dead(outbox_id, now=now, reason=reason, outcome_json=outcome_json)
        real_retries = [reason for _, _, reason in outcome.retry if reason not in _PASS_REASONS]
        if real_retries or outcome.dead:
            reason = real_retries[-1] if real_retries else outcome.dead[-1][1]
            self.store.set_state(STATE_LAST_ERROR, json.dumps({"at": now.isoformat(), "reason": reason}))
        size = json.dumps({"current": self.sizer.current, "ceiling": self.sizer.ceiling,
                           "largest_success": self.sizer.largest_success})
        if size != self._size_written:
            self.store.set_state(STATE_BUNDLE_SIZE, size)
            self._size_written = size
        snapshot = self.circuit.snapshot()
        if snapshot != self._circuit_written:
            self.store.set_state(STATE_CIRCUIT, snapshot)
            self._circuit_written = snapshot

    # ---- sending --------------------------------------------------------------------------------------
    async def _post(self, bundle: AssembledBundle, outcome: PassOutcome) -> Any:
        outcome.requests += 1
        return await self.sender.post_bundle(bundle.body)

    def _retry_later(self, records: Sequence[PreparedRecord], attempts: dict[int, int], outcome: PassOutcome,
                     reason: str, retry_after: float | None) -> None:
        ids = [r.outbox_id for r in records]
        tries = max(attempts.get(i, 0) for i in ids)
        delay = self.settings.backoff.delay(tries, retry_after=retry_after, rand=self._rand)
        outcome.retry.append((ids, delay, reason))

    async def _deliver(self, records: Sequence[PreparedRecord], attempts: dict[int, int],
                       outcome: PassOutcome, *, fresh: bool = False) -> bool:
        """Send `records`; returns True when the platform refused nothing and nothing was left for later."""
        if not records:
            return True
        try:
            if self.settings.bundle_type == "batch":
                return await self._deliver_batch(records, attempts, outcome)
            bundle = transaction_bundle(records, resolved=None if fresh else self._resolved)
            reply = await self._post(bundle, outcome)
        except TransientSyncError as exc:
            # str(exc) keeps the advice (e.g. which TLS setting to check) for the log and `sync status`
            self.circuit.record_failure(self._now().timestamp(), reason=str(exc), retry_after=exc.retry_after)
            log.debug("bundle of %d records deferred: %s", len(records), exc.message)
            self._retry_later(records, attempts, outcome, str(exc), exc.retry_after)
            return False
        except PermanentSyncError as exc:
            self.circuit.record_success(self._now().timestamp())  # the platform is up; it disliked the content
            if self._resolved and not fresh and not says_too_large(exc.status, exc.outcome):
                # A reference we resolved earlier may have gone stale (merged or deleted on the server):
                # resend once with the Patient/Device entries themselves before blaming a record.
                self._resolved.clear()
                return await self._deliver(records, attempts, outcome, fresh=True)
            return await self._refused(records, attempts, outcome, exc)
        self.circuit.record_success(self._now().timestamp())
        self.sizer.succeeded(bundle.entry_count)
        self._remember_locations(bundle, reply)
        return self._judge_entries(records, bundle, _entries(reply), attempts, outcome)

    def _judge_entries(self, records: Sequence[PreparedRecord], bundle: AssembledBundle,
                       rows: list[tuple[int, str | None, dict[str, Any] | None]], attempts: dict[int, int],
                       outcome: PassOutcome) -> bool:
        """Per-entry answers. A real transaction is all-or-nothing, but a server that runs "transactions" as
        batches (Medplum unless configured otherwise) answers 200 with failed entries inside."""
        if not rows:  # nothing per entry: the 2xx covers the whole bundle
            outcome.sent.extend(r.outbox_id for r in records)
            return True
        clean = True
        for record, position in zip(records, bundle.observation_entry_index, strict=True):
            status, _, entry_outcome = rows[position] if position < len(rows) else (0, None, None)
            if 200 <= status < 300:
                outcome.sent.append(record.outbox_id)
            elif status in CONTENT_STATUSES:
                log.warning("outbox %d dead-lettered: the platform refused it with %s", record.outbox_id, status)
                outcome.dead.append((record.outbox_id, f"Observation refused with {status}", _dump(entry_outcome)))
                clean = False
            else:
                self._retry_later([record], attempts, outcome, f"entry answered {status}", None)
                clean = False
        return clean

    def _remember_locations(self, bundle: AssembledBundle, reply: Any) -> None:
        """Keep the server ids of the Patients/Devices a transaction just created or matched, so the next
        bundles reference them directly instead of repeating their conditional-create entries."""
        if len(self._resolved) > MAX_RESOLVED:
            self._resolved.clear()
        rows = _entries(reply)
        for support, row in zip(bundle.supporting, rows, strict=False):
            target = location_reference(row[1]) if 200 <= row[0] < 300 else None
            if target:
                self._resolved[support.full_url] = target

    async def _refused(self, records: Sequence[PreparedRecord], attempts: dict[int, int], outcome: PassOutcome,
                       exc: PermanentSyncError) -> bool:
        if exc.status not in CONTENT_STATUSES:
            log.warning("platform refused a bundle with %s, which is not about its content; "
                        "keeping %d records pending (check platform.base_url)", exc.status, len(records))
            self._retry_later(records, attempts, outcome, exc.message, self.settings.backoff.cap)
            return False
        entries = self._entry_count(records)
        if says_too_large(exc.status, exc.outcome) and len(records) > 1:
            self.sizer.refused(entries)
            queue = deque(records)
            results = []
            while queue:
                results.append(await self._deliver(self._take(queue), attempts, outcome))
            return all(results)
        if len(records) == 1:
            record = records[0]
            # The server's text stays in the dead letter (the database): it may quote the resource.
            log.warning("outbox %d dead-lettered: the platform refused it with %s", record.outbox_id, exc.status)
            outcome.dead.append((record.outbox_id, exc.message, _dump(exc.outcome)))
            return False
        # Bisect: only the offending entry ends dead; the rest is delivered.
        middle = len(records) // 2
        first = await self._deliver(records[:middle], attempts, outcome)
        second = await self._deliver(records[middle:], attempts, outcome)
        if first and second:
            # Both halves passed: the server's objection was the bundle's size, whatever it said.
            self.sizer.refused(entries)
        return first and second

    def _entry_count(self, records: Sequence[PreparedRecord]) -> int:
        if self.settings.bundle_type != "transaction":
            return len(records)
        support = {s.full_url for r in records for s in r.supporting if s.full_url not in self._resolved}
        return len(records) + len(support)

    async def _deliver_batch(self, records: Sequence[PreparedRecord], attempts: dict[int, int],
                             outcome: PassOutcome) -> bool:
        """Batch mode: Patient/Device first (conditional creates), then Observations with real references."""
        clean = True
        prerequisites = prerequisite_bundle(records, self._resolved)
        blocked: dict[str, tuple[int, str, dict[str, Any] | None]] = {}
        if prerequisites is not None:
            reply = await self._post(prerequisites, outcome)
            for support, (status, location, entry_outcome) in zip(prerequisites.supporting,
                                                                  _entries(reply), strict=False):
                target = location_reference(location) if 200 <= status < 300 else None
                if target:
                    self._resolved[support.full_url] = target
                else:
                    blocked[support.full_url] = (status, f"{support.resource_type} refused with {status}",
                                                 entry_outcome)
        ready: list[PreparedRecord] = []
        for record in records:
            problem = next((blocked[s.full_url] for s in record.supporting if s.full_url in blocked), None)
            if problem is None:
                ready.append(record)
            elif 400 <= problem[0] < 500 and problem[0] not in (408, 429):
                outcome.dead.append((record.outbox_id, problem[1], _dump(problem[2])))
                clean = False
            else:
                self._retry_later([record], attempts, outcome, problem[1], None)
                clean = False
        if not ready:
            return clean
        bundle = transaction_bundle(ready, bundle_type="batch", resolved=self._resolved)
        reply = await self._post(bundle, outcome)
        self.circuit.record_success(self._now().timestamp())
        self.sizer.succeeded(bundle.entry_count)
        return self._judge_entries(ready, bundle, _entries(reply), attempts, outcome) and clean

    # ---- loops ----------------------------------------------------------------------------------------
    async def drain(self, *, until_empty: bool = False, max_wait: float = 600.0,
                    remaining: Callable[[], Awaitable[int]] | None = None,
                    stop: asyncio.Event | None = None) -> DrainReport:
        """Deliver everything due now; with `until_empty`, also wait out retries/circuit until `remaining()`
        (deliverable rows left) is 0 or `max_wait` seconds (on the injected clock) have passed."""
        report = DrainReport()
        started = self._now()
        while stop is None or not stop.is_set():
            await self._stream(report, stop)
            if not until_empty or remaining is None or await remaining() == 0:
                break
            if (self._now() - started).total_seconds() >= max_wait:
                break
            await self._sleep(await self._idle_delay())
        return report

    async def run_forever(self, stop: asyncio.Event) -> None:
        """The `healthhut run sync` loop: drain, then sleep until the next row is due (at most `idle_poll`
        seconds, so records the gateway stores meanwhile go out soon) or until `stop`."""
        report = DrainReport()
        while not stop.is_set():
            await self._stream(report, stop)
            delay = await self._idle_delay()
            # the injected sleep (tests drive it with a fake clock), cut short by `stop`
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._sleep(delay))]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()

    async def _idle_delay(self) -> float:
        """Seconds until there is something to do: the circuit's probe time while it is open, else the next
        row's retry time or lease expiry (`next_due_at`), never more than `idle_poll`."""
        now = self._now()
        until_probe = self.circuit.seconds_until_probe(now.timestamp())
        if until_probe > 0:
            return until_probe
        next_due = getattr(self.store, "next_due_at", None)
        due = await asyncio.to_thread(next_due) if next_due is not None else None
        if due is None:
            return self.settings.idle_poll
        # a floor: a row due "now" that the claim did not return must not turn this into a busy loop
        return min(self.settings.idle_poll, max(MIN_IDLE, (due - now).total_seconds()))


def _entries(reply: Any) -> list[tuple[int, str | None, dict[str, Any] | None]]:
    return response_entries(getattr(reply, "bundle", reply))


def _dump(outcome: dict[str, Any] | None) -> str | None:
    return None if outcome is None else json.dumps(outcome, separators=(",", ":"))
