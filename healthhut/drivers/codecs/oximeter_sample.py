"""Normalisation shared by the serial oximeter codecs (reference §1.8): vendor codes → Quantities, flags.

Every family marks an invalid value differently (0, 0x7F, 0xFF, a probe-error bit); these helpers turn one
live sample into one SPO2 Reading and a downloaded recording into one OXIMETRY_SERIES Reading, so the rules
live in one place. Pure: the receive time and site timezone come from the ReadingContext.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from decimal import Decimal

from healthhut.drivers.codecs.base import ReadingContext
from healthhut.readings import (
    AbsentReason,
    Metric,
    Quantity,
    Reading,
    ReadingKind,
    SampleSeries,
    StatusFlag,
    TimeSource,
    Unit,
)

SPO2_FLOOR = 50          # below this a reading is an artefact (pobm / psgscoring use 50..100)
SPO2_INVALID_CODES = frozenset({0, 0x7F, 0xFF})
PULSE_INVALID_CODES = frozenset({0, 0xFF, 0xFFFF})
PULSE_CEILING = 254


@dataclass(frozen=True, slots=True)
class OximeterSample:
    """One live sample in device terms; `None` where the device gave no value field at all."""

    spo2: int
    pulse_rate: int
    perfusion_index: Decimal | None = None   # %, already scaled; None when absent or invalid
    finger_out: bool = False
    searching: bool = False


def spo2_quantity(raw: int, *, floor: int = SPO2_FLOOR) -> Quantity:
    if raw in SPO2_INVALID_CODES:
        return Quantity.missing(AbsentReason.NOT_A_NUMBER, Unit.PERCENT)
    if raw > 100 or raw < floor:
        return Quantity.missing(AbsentReason.OUT_OF_RANGE, Unit.PERCENT)
    return Quantity.of(raw, Unit.PERCENT)


def pulse_quantity(raw: int) -> Quantity:
    if raw in PULSE_INVALID_CODES:
        return Quantity.missing(AbsentReason.NOT_A_NUMBER, Unit.PER_MINUTE)
    if raw > PULSE_CEILING:
        return Quantity.missing(AbsentReason.OUT_OF_RANGE, Unit.PER_MINUTE)
    return Quantity.of(raw, Unit.PER_MINUTE)


def spo2_or_none(raw: int, *, floor: int = SPO2_FLOOR) -> float | None:
    """A stored-series sample: the value, or None for any invalid code."""
    return float(raw) if spo2_quantity(raw, floor=floor).present else None


def pulse_or_none(raw: int) -> float | None:
    return float(raw) if pulse_quantity(raw).present else None


def live_reading(sample: OximeterSample, context: ReadingContext, raw: bytes) -> Reading:
    """One live sample → an SPO2 Reading timed by receipt (the devices stream without timestamps).

    Finger out: both values absent with SENSOR_OFF. Searching: both absent (NOT_A_NUMBER), because the
    device keeps showing the last values while it searches and they are stale.
    """
    status: set[StatusFlag] = set()
    if sample.finger_out:
        status.add(StatusFlag.FINGER_OUT)
    if sample.searching:
        status.add(StatusFlag.SEARCHING)
    values: dict[Metric, Quantity]
    if sample.finger_out:
        values = {Metric.SPO2: Quantity.missing(AbsentReason.SENSOR_OFF, Unit.PERCENT),
                  Metric.PULSE_RATE: Quantity.missing(AbsentReason.SENSOR_OFF, Unit.PER_MINUTE)}
    elif sample.searching:
        values = {Metric.SPO2: Quantity.missing(AbsentReason.NOT_A_NUMBER, Unit.PERCENT),
                  Metric.PULSE_RATE: Quantity.missing(AbsentReason.NOT_A_NUMBER, Unit.PER_MINUTE)}
    else:
        values = {Metric.SPO2: spo2_quantity(sample.spo2), Metric.PULSE_RATE: pulse_quantity(sample.pulse_rate)}
        if sample.perfusion_index is not None:
            values[Metric.PULSE_AMPLITUDE_INDEX] = Quantity(sample.perfusion_index, Unit.PERCENT)
    return Reading(
        kind=ReadingKind.SPO2,
        device=context.device,
        received_at=context.received_at,
        values=values,
        measured_at=context.received_at,
        time_source=TimeSource.RECEIPT,
        status=frozenset(status),
        raw=raw,
        patient_hint=context.patient_hint,
    )


def series_reading(
    *,
    spo2: Sequence[float | None],
    pulse_rate: Sequence[float | None],
    start: datetime | None,
    period: timedelta,
    context: ReadingContext,
) -> Reading:
    """A downloaded recording → one OXIMETRY_SERIES Reading (the stored record of a night).

    `start` is the device's recording start in site time; None when the device has no clock, in which case
    the series is anchored at `received_at - duration` (an estimate) and the time source is UNKNOWN.
    """
    if len(spo2) != len(pulse_rate):
        raise ValueError("SpO2 and pulse series must have the same length")
    status = {StatusFlag.FROM_STORAGE}
    if start is None:
        anchor = context.received_at - period * len(spo2)
        measured_at: datetime | None = None
        source = TimeSource.UNKNOWN
        status.add(StatusFlag.CLOCK_NOT_SET)
    else:
        anchor = start
        measured_at = start
        source = TimeSource.DEVICE
    series = {
        Metric.SPO2: SampleSeries(anchor, period, Unit.PERCENT, tuple(spo2)),
        Metric.PULSE_RATE: SampleSeries(anchor, period, Unit.PER_MINUTE, tuple(pulse_rate)),
    }
    return Reading(
        kind=ReadingKind.OXIMETRY_SERIES,
        device=context.device,
        received_at=context.received_at,
        measured_at=measured_at,
        time_source=source,
        clock_skew=context.clock_skew if source is TimeSource.DEVICE else None,
        status=frozenset(status),
        patient_hint=context.patient_hint,
        series=series,
    )


def trim_padding(spo2: list[float | None], pulse: list[float | None], expected: int) -> None:
    """Drop the invalid pairs that pad the last stored packet (V7 0x0F carries three pairs) beyond `expected`.

    Only up to two trailing invalid pairs are dropped: if `expected` is far off (a model that counts its
    stored length differently), nothing is dropped rather than real data.
    """
    while 0 < len(spo2) - expected < 3 and spo2[-1] is None and pulse[-1] is None:
        spo2.pop()
        pulse.pop()


def device_start(year: int, month: int, day: int, hour: int, minute: int, second: int,
                 zone: tzinfo) -> datetime | None:
    """A recording start from device wall-clock fields in the site zone; None when the clock was never set."""
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:   # year 0 / month 0: the unit's clock was never set
        return None


def start_from_hour_minute(headers: Sequence[tuple[int, int]], estimated_start: datetime) -> datetime | None:
    """Generation-A upload headers give only hh:mm: put it on the latest day not after the estimated start.

    None for 00:00 (a CMS50D+ has no clock and always sends it) or when no header arrived. The most common
    of the (normally three) headers wins, so one corrupted trio does not matter.
    """
    if not headers:
        return None
    (hour, minute), _ = Counter(headers).most_common(1)[0]
    if (hour, minute) == (0, 0) or hour > 23 or minute > 59:
        return None
    candidate = datetime.combine(estimated_start.date(), time(hour, minute), tzinfo=estimated_start.tzinfo)
    if candidate > estimated_start + timedelta(minutes=1):
        candidate -= timedelta(days=1)
    return candidate
