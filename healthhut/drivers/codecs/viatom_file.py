"""Viatom/Wellue overnight oximeter stored file (O2Ring, Checkme O2, SleepU; format version 3, O2 Max 5).

Pure decode and encode (encode is for tests and emulators), reference serial-and-sleep.md §3.3.2: a 40-byte
header then 5-byte records (SpO2, pulse u16 LE, motion, reserved). No records/FHIR imports, so the BLE driver
can reuse it for files downloaded with FILE_OPEN/FILE_READ.

Uncertain in the reference: two open-source decodings of header bytes 21-24 disagree (Lepu: seconds < 90 %
at 21-22; OSCAR/o2r: at 22-23). Header statistics are informational only; the analysis recomputes everything
from the samples. Old firmware that wrote every 4-s sample twice is not de-duplicated here.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from healthhut.drivers.codecs.base import ReadingContext, SingleFrameCodec
from healthhut.errors import DecodeError
from healthhut.readings import Metric, Reading, ReadingKind, SampleSeries, TimeSource, Unit

CODEC = "viatom.file"
HEADER_SIZE = 40
RECORD_SIZE = 5
VERSIONS = {3: 4, 5: 2}        # file version -> default seconds per record (Checkme O2 Max: 2 s)
INVALID_SPO2 = 0xFF            # also written for SpO2 < 61 %
INVALID_PULSE = 0xFFFF
_HEADER = struct.Struct("<BBHBBBBBIHHBBBBHBBBI10s")


@dataclass(frozen=True, slots=True)
class ViatomFileHeader:
    version: int
    mode: int                   # 0 sleep, 1 monitor
    start: datetime             # device wall clock, naive
    file_size: int
    duration_s: int
    average_spo2: int
    minimum_spo2: int
    drops_3pct: int
    drops_4pct: int
    seconds_below_90: int       # Lepu offset 21 (u16); see the module note
    episodes_below_90: int
    percent_below_90_raw: int
    o2_score: Decimal           # stored x10
    steps: int


@dataclass(frozen=True, slots=True)
class ViatomRecord:
    spo2: int | None            # None: 0xFF (invalid or below 61 %)
    pulse: int | None           # None: 0xFFFF
    motion: int
    reserved: int


@dataclass(frozen=True, slots=True)
class ViatomFile:
    header: ViatomFileHeader
    records: tuple[ViatomRecord, ...]
    interval_s: int


def _interval(version: int, duration_s: int, count: int) -> int:
    if count and duration_s and duration_s % count == 0 and duration_s // count in (1, 2, 4):
        return duration_s // count
    return VERSIONS[version]


def decode_viatom_file(data: bytes) -> ViatomFile:
    """Decode a whole stored file; DecodeError with the offset on a short, truncated or unknown file."""
    if len(data) < HEADER_SIZE:
        raise DecodeError(f"a Viatom file needs a {HEADER_SIZE}-byte header, got {len(data)} bytes",
                          offset=len(data), codec=CODEC)
    (version, mode, year, month, day, hour, minute, second, size, duration, _asleep, avg, low, d3, d4,
     below90, episodes, pct, score, steps, _reserved) = _HEADER.unpack_from(data, 0)
    if version not in VERSIONS:
        raise DecodeError(f"unknown Viatom file version {version}", offset=0, codec=CODEC)
    if size != len(data):
        raise DecodeError(f"file size field says {size} bytes but {len(data)} were given (truncated download?)",
                          offset=9, codec=CODEC)
    if (len(data) - HEADER_SIZE) % RECORD_SIZE:
        raise DecodeError("the record area is not a whole number of 5-byte records",
                          offset=HEADER_SIZE + (len(data) - HEADER_SIZE) // RECORD_SIZE * RECORD_SIZE,
                          codec=CODEC)
    try:
        start = datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise DecodeError("the header start time is not a valid date", offset=2, codec=CODEC) from None
    header = ViatomFileHeader(version, mode, start, size, duration, avg, low, d3, d4, below90, episodes, pct,
                              Decimal(score).scaleb(-1), steps)
    records = []
    for offset in range(HEADER_SIZE, len(data), RECORD_SIZE):
        spo2, pulse, motion, reserved = struct.unpack_from("<BHBB", data, offset)
        records.append(ViatomRecord(None if spo2 == INVALID_SPO2 else spo2,
                                    None if pulse == INVALID_PULSE else pulse, motion, reserved))
    return ViatomFile(header, tuple(records), _interval(version, duration, len(records)))


def encode_viatom_file(header: ViatomFileHeader, records: Sequence[ViatomRecord]) -> bytes:
    """The inverse of decode (file size is recomputed), for tests and the ring emulator."""
    size = HEADER_SIZE + RECORD_SIZE * len(records)
    h = header
    head = _HEADER.pack(h.version, h.mode, h.start.year, h.start.month, h.start.day, h.start.hour,
                        h.start.minute, h.start.second, size, h.duration_s, 0, h.average_spo2, h.minimum_spo2,
                        h.drops_3pct, h.drops_4pct, h.seconds_below_90, h.episodes_below_90,
                        h.percent_below_90_raw, int(h.o2_score * 10), h.steps, bytes(10))
    body = b"".join(struct.pack("<BHBB", INVALID_SPO2 if r.spo2 is None else r.spo2,
                                INVALID_PULSE if r.pulse is None else r.pulse, r.motion, r.reserved)
                    for r in records)
    return head + body


def viatom_file_reading(decoded: ViatomFile, context: ReadingContext, raw: bytes = b"") -> Reading:
    """The night as one OXIMETRY_SERIES Reading (SpO2, pulse and motion series), on the device's clock."""
    start = decoded.header.start.replace(tzinfo=context.timezone)
    period = timedelta(seconds=decoded.interval_s)

    def series(values: tuple[float | None, ...], unit: Unit) -> SampleSeries:
        return SampleSeries(start=start, period=period, unit=unit, samples=values)

    recs = decoded.records
    return Reading(
        kind=ReadingKind.OXIMETRY_SERIES, device=context.device, received_at=context.received_at,
        measured_at=start, time_source=TimeSource.DEVICE, clock_skew=context.clock_skew, raw=raw,
        patient_hint=context.patient_hint,
        series={Metric.SPO2: series(tuple(None if r.spo2 is None else float(r.spo2) for r in recs), Unit.PERCENT),
                Metric.PULSE_RATE: series(tuple(None if r.pulse is None else float(r.pulse) for r in recs),
                                          Unit.PER_MINUTE),
                Metric.MOTION: series(tuple(float(r.motion) for r in recs), Unit.ONE)})


class ViatomFileCodec(SingleFrameCodec):
    """`viatom.file`: one stored overnight file is one frame."""

    name = CODEC
    summary = "Viatom/Wellue O2Ring/Checkme O2 stored overnight file (v3/v5): 40-byte header + 5-byte records"

    def decode(self, frame: bytes) -> ViatomFile:
        return decode_viatom_file(frame)

    def readings(self, decoded: Any, context: ReadingContext) -> Sequence[Reading]:
        if not isinstance(decoded, ViatomFile):
            raise TypeError("viatom.file maps only ViatomFile values")
        if not decoded.records:
            return []
        return [viatom_file_reading(decoded, context)]
