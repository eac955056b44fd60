"""The one path from a device frame or Reading to the store: decode, normalise, store or reject.

The daemon, `healthhut replay` and the tests all go through `Ingestor`, so a capture replays exactly the way
live data is handled. Every frame ends as stored records, a duplicate, or a stored rejection with a reason;
nothing is logged and dropped. Blocking (SQLite) work: the daemon calls these methods in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from healthhut.drivers.codecs.base import Codec, ReadingContext
from healthhut.errors import DecodeError, ReadingError
from healthhut.readings import Reading

if TYPE_CHECKING:
    from healthhut.records.drafts import PatientRef
    from healthhut.records.normalise import NormaliseSettings
    from healthhut.records.store import RecordStore

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
        from healthhut.records.normalise import device_resource, observations_for, patient_resource
        from healthhut.records.store import StoreOutcome

        now = now or datetime.now(UTC)
        try:
            drafts = observations_for(reading, patient, self._settings)
        except ReadingError as exc:
            rejection_id = self._store.record_rejection(
                device_key=_device_key(reading), codec=None, raw_hex=reading.raw.hex() or None,
                reason=exc.message, now=now)
            log.warning("reading rejected (rejection %d): %s", rejection_id, exc.message)
            return IngestOutcome(IngestStatus.REJECTED, reason=exc.message)
        result = self._store.save_reading(
            reading, drafts, patient=patient,
            patient_resource=patient_resource(patient) if patient else None,
            device_resource=device_resource(reading.device, kinds=[reading.kind]), now=now)
        status = {
            StoreOutcome.STORED: IngestStatus.STORED,
            StoreOutcome.HELD: IngestStatus.HELD,
            StoreOutcome.DUPLICATE: IngestStatus.DUPLICATE,
        }[result.outcome]
        log.info("reading %s: %s, %d observation(s)", result.reading_id, status.value,
                 len(result.observation_ids))
        return IngestOutcome(status, result.reading_id, tuple(result.observation_ids))

    def ingest_frame(self, codec: Codec, frame: bytes, context: ReadingContext,
                     patient: PatientRef | None, *, now: datetime | None = None) -> list[IngestOutcome]:
        """Decode one frame and ingest what it carries; an undecodable frame becomes a stored rejection."""
        now = now or datetime.now(UTC)
        try:
            decoded = codec.decode(frame)
            readings: Sequence[Reading] = codec.readings(decoded, context)
        except (DecodeError, ReadingError) as exc:
            rejection_id = self._store.record_rejection(
                device_key=_identity_key(context), codec=codec.name, raw_hex=frame.hex(),
                reason=exc.message, now=now)
            log.warning("%s frame rejected (rejection %d): %s", codec.name, rejection_id, exc.message)
            return [IngestOutcome(IngestStatus.REJECTED, reason=exc.message)]
        if not readings or getattr(codec, "live_only", False):
            return [IngestOutcome(IngestStatus.DISPLAY_ONLY)]
        return [self.ingest_reading(reading, patient, now=now) for reading in readings]


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
