"""The one path from a device frame or Reading to the store: decode, normalise, store or reject.

The daemon, `healthhut replay` and the tests all go through `Ingestor`, so a capture replays exactly the way
live data is handled. Every frame ends as stored records, a duplicate, or a stored rejection with a reason;
nothing is logged and dropped. Bursts (a replayed capture, a device's stored records) go through
`ingest_frames`/`ingest_readings`: everything is decoded and normalised first, then stored in one group commit.
Blocking (SQLite) work: the daemon calls these methods in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, cast

from healthhut.drivers.codecs.base import Codec, ReadingContext
from healthhut.errors import DecodeError, ReadingError, StoreError
from healthhut.readings import Reading

if TYPE_CHECKING:
    from healthhut.records.drafts import PatientRef
    from healthhut.records.normalise import NormaliseSettings
    from healthhut.records.store import ReadingToSave, RecordStore, StoreResult

log = logging.getLogger(__name__)


class IngestStatus(StrEnum):
    STORED = "stored"
    HELD = "held"              # stored, waiting for a resident to be assigned
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    DISPLAY_ONLY = "display-only"  # a frame that carries no measurement (cuff pressure, keep-alive)


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    status: IngestStatus
    reading_id: int | None = None
    observation_ids: tuple[int, ...] = ()
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class IncomingFrame:
    """One frame for `Ingestor.ingest_frames`, with the context it arrived in."""

    data: bytes
    context: ReadingContext
    now: datetime | None = None  # the time its rows are stored with; None: the `now` of the call


class IngestBatchError(StoreError):
    """Readings of a batch that could not be stored even one at a time; every other reading of it was stored.

    Message and advice are those of the first failure. `outcomes` has the shape the call would have
    returned (one list per frame; for `ingest_readings` one single-entry list per reading), with the
    StoreError a reading raised in place of its outcome.
    """

    def __init__(self, first: StoreError, outcomes: list[list[IngestOutcome | StoreError]]) -> None:
        super().__init__(first.message, advice=first.advice)
        self.outcomes = outcomes


class Ingestor:
    """Normalises Readings for one site and writes them through the record store."""

    def __init__(self, store: RecordStore, settings: NormaliseSettings, *, site_name: str | None = None) -> None:
        from healthhut.records.normalise import gateway_resource

        self._store = store
        self._settings = settings
        # Every Observation names this gateway (PHD observation-gatewayDevice); register its Device once.
        store.set_gateway(settings.site_id, gateway_resource(settings.site_id, site_name))

    def ingest_reading(self, reading: Reading, patient: PatientRef | None, *,
                       now: datetime | None = None) -> IngestOutcome:
        """Normalise and store one reading in its own transaction; a store failure raises its StoreError."""
        prepared = self._prepare(reading, patient, now or datetime.now(UTC))
        return self._store_prepared([[prepared]], batch=False)[0][0]

    def ingest_readings(self, items: Sequence[tuple[Reading, PatientRef | None]], *,
                        now: datetime | None = None) -> list[IngestOutcome]:
        """Normalise every reading, then store all that normalised in one group commit; outcomes in order.

        A reading that does not normalise becomes a stored rejection, as in `ingest_reading`. If the group
        commit fails (it stores nothing then), the readings are saved one at a time, so one bad reading
        cannot cost the others; if any of them still fails, IngestBatchError (a StoreError) is raised once
        all the others are stored, carrying every outcome and error.
        """
        at = now or datetime.now(UTC)
        slots: list[list[IngestOutcome | ReadingToSave]] = [[self._prepare(reading, patient, at)]
                                                            for reading, patient in items]
        return [outcomes[0] for outcomes in self._store_prepared(slots, batch=True)]

    def ingest_frame(self, codec: Codec, frame: bytes, context: ReadingContext,
                     patient: PatientRef | None, *, now: datetime | None = None) -> list[IngestOutcome]:
        """Decode one frame and ingest what it carries; an undecodable frame becomes a stored rejection.

        The frame's readings are stored in one transaction; a store failure raises its StoreError (after the
        frame's other readings were stored one at a time)."""
        prepared = self._decode(codec, IncomingFrame(frame, context), patient, now or datetime.now(UTC))
        return self._store_prepared([prepared], batch=False)[0]

    def ingest_frames(self, codec: Codec, frames: Sequence[IncomingFrame], patient: PatientRef | None, *,
                      now: datetime | None = None) -> list[list[IngestOutcome]]:
        """`ingest_frame` for each frame, with one group commit for all their readings; one list per frame.

        Frames are decoded and normalised first (rejections are stored as they are found), then every
        reading is stored in one transaction. A frame's rows carry its own `now`, else this call's `now`,
        else the time of the call. Store failures are handled as in `ingest_readings`.
        """
        default_now = now or datetime.now(UTC)
        slots = [self._decode(codec, frame, patient, frame.now or default_now) for frame in frames]
        return self._store_prepared(slots, batch=True)

    def _decode(self, codec: Codec, frame: IncomingFrame, patient: PatientRef | None,
                now: datetime) -> list[IngestOutcome | ReadingToSave]:
        try:
            decoded = codec.decode(frame.data)
            readings: Sequence[Reading] = codec.readings(decoded, frame.context)
        except (DecodeError, ReadingError) as exc:
            rejection_id = self._store.record_rejection(
                device_key=_identity_key(frame.context), codec=codec.name, raw_hex=frame.data.hex(),
                reason=exc.message, now=now)
            log.warning("%s frame rejected (rejection %d): %s", codec.name, rejection_id, exc.message)
            return [IngestOutcome(IngestStatus.REJECTED, reason=exc.message)]
        if not readings or getattr(codec, "live_only", False):
            return [IngestOutcome(IngestStatus.DISPLAY_ONLY)]
        return [self._prepare(reading, patient, now) for reading in readings]

    def _prepare(self, reading: Reading, patient: PatientRef | None,
                 now: datetime) -> IngestOutcome | ReadingToSave:
        """What to store for one reading, or its outcome when it is rejected (then stored as a rejection)."""
        from healthhut.records.normalise import device_resource, observations_for, patient_resource
        from healthhut.records.store import ReadingToSave

        try:
            drafts = observations_for(reading, patient, self._settings)
        except ReadingError as exc:
            rejection_id = self._store.record_rejection(
                device_key=_device_key(reading), codec=None, raw_hex=reading.raw.hex() or None,
                reason=exc.message, now=now)
            log.warning("reading rejected (rejection %d): %s", rejection_id, exc.message)
            return IngestOutcome(IngestStatus.REJECTED, reason=exc.message)
        return ReadingToSave(reading, drafts, patient, patient_resource(patient) if patient else None,
                             device_resource(reading.device, kinds=[reading.kind]), now)

    def _store_prepared(self, slots: list[list[IngestOutcome | ReadingToSave]], *,
                        batch: bool) -> list[list[IngestOutcome]]:
        """Store every prepared reading of `slots` in one group commit; the slots filled with outcomes.

        A reading that cannot be stored raises, once the others are stored: IngestBatchError for a `batch`
        call, else (one frame or reading, as before group commit) its own StoreError."""
        from healthhut.records.store import ReadingToSave

        pending = [item for outcomes in slots for item in outcomes if isinstance(item, ReadingToSave)]
        if not pending:
            return cast("list[list[IngestOutcome]]", slots)
        saved = iter(self._save(pending))
        filled = [[next(saved) if isinstance(item, ReadingToSave) else item for item in outcomes]
                  for outcomes in slots]
        first_error = next((o for outcomes in filled for o in outcomes if isinstance(o, StoreError)), None)
        if first_error is not None:
            if not batch:
                raise first_error
            raise IngestBatchError(first_error, filled) from first_error
        return cast("list[list[IngestOutcome]]", filled)

    def _save(self, items: list[ReadingToSave]) -> list[IngestOutcome | StoreError]:
        try:
            results: list[StoreResult | StoreError] = list(self._store.save_readings(items))
        except StoreError as exc:
            if len(items) == 1:
                return [exc]
            # one bad reading must not cost the others: nothing of the batch was stored, so save each alone
            log.warning("a batch of %d readings failed (%s); saving them one at a time", len(items), exc.message)
            results = []
            for item in items:
                try:
                    results.extend(self._store.save_readings([item]))
                except StoreError as alone:
                    log.warning("a reading of the batch could not be stored: %s", alone.message)
                    results.append(alone)
        return [result if isinstance(result, StoreError) else _outcome(result) for result in results]


def _outcome(result: StoreResult) -> IngestOutcome:
    from healthhut.records.store import StoreOutcome

    status = {
        StoreOutcome.STORED: IngestStatus.STORED,
        StoreOutcome.HELD: IngestStatus.HELD,
        StoreOutcome.DUPLICATE: IngestStatus.DUPLICATE,
    }[result.outcome]
    log.info("reading %s: %s, %d observation(s)", result.reading_id, status.value, len(result.observation_ids))
    return IngestOutcome(status, result.reading_id, tuple(result.observation_ids))


def _device_key(reading: Reading) -> str | None:
    try:
        return reading.device.key
    except ReadingError:
        return None


def _identity_key(context: ReadingContext) -> str | None:
    try:
        return context.device.key
    except ReadingError:
        return None
