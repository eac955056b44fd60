"""The Reading model refuses what cannot become a correct record: naive times, bare NaNs, ambiguous values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from healthhut.errors import ReadingError
from healthhut.readings import (
    AbsentReason,
    DeviceIdentity,
    Metric,
    Quantity,
    Reading,
    ReadingKind,
    SampleSeries,
    TimeSource,
    Transport,
    Unit,
)

DEVICE = DeviceIdentity(transport=Transport.BLE, address="00:1c:05:ff:e8:74")
CST = timezone(timedelta(hours=8))
RECEIVED = datetime(2024, 6, 23, 14, 36, 2, tzinfo=CST)


def test_quantity_is_value_xor_absent() -> None:
    assert Quantity.of("120", Unit.MMHG).value == Decimal("120")
    assert Quantity.missing(AbsentReason.NOT_A_NUMBER, Unit.MMHG).present is False
    with pytest.raises(ReadingError):
        Quantity(None, Unit.MMHG)
    with pytest.raises(ReadingError):
        Quantity(Decimal(1), Unit.MMHG, AbsentReason.NOT_A_NUMBER)
    with pytest.raises(ReadingError, match="finite"):
        Quantity(Decimal("NaN"), Unit.PERCENT)


def test_resolution_is_kept() -> None:
    assert str(Quantity.of("2.00", Unit.ONE).value) == "2.00"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ReadingError, match="timezone-aware"):
        Reading(ReadingKind.SPO2, DEVICE, received_at=datetime(2024, 1, 1), measured_at=RECEIVED)
    with pytest.raises(ReadingError, match="timezone-aware"):
        Reading(ReadingKind.SPO2, DEVICE, received_at=RECEIVED, measured_at=datetime(2024, 1, 1),
                time_source=TimeSource.DEVICE)


def test_time_source_and_measured_at_must_agree() -> None:
    with pytest.raises(ReadingError):
        Reading(ReadingKind.SPO2, DEVICE, received_at=RECEIVED, measured_at=RECEIVED,
                time_source=TimeSource.UNKNOWN)
    with pytest.raises(ReadingError):
        Reading(ReadingKind.SPO2, DEVICE, received_at=RECEIVED, measured_at=None)


def test_effective_time_applies_skew_only_to_device_times() -> None:
    device_time = datetime(2024, 6, 23, 14, 30, tzinfo=CST)
    skew = timedelta(minutes=5)
    corrected = Reading(ReadingKind.SPO2, DEVICE, received_at=RECEIVED, measured_at=device_time,
                        time_source=TimeSource.DEVICE, clock_skew=skew)
    assert corrected.effective_at == device_time + skew
    assert corrected.time_corrected
    unknown = Reading(ReadingKind.SPO2, DEVICE, received_at=RECEIVED, time_source=TimeSource.UNKNOWN,
                      clock_skew=skew)
    assert unknown.effective_at == RECEIVED
    receipt = Reading(ReadingKind.SPO2, DEVICE, received_at=RECEIVED, measured_at=RECEIVED, clock_skew=skew)
    assert receipt.effective_at == RECEIVED and not receipt.time_corrected


def test_reading_is_frozen_including_its_values() -> None:
    values = {Metric.SPO2: Quantity.of(97, Unit.PERCENT)}
    reading = Reading(ReadingKind.SPO2, DEVICE, received_at=RECEIVED, measured_at=RECEIVED, values=values)
    values[Metric.PULSE_RATE] = Quantity.of(72, Unit.PER_MINUTE)
    assert Metric.PULSE_RATE not in reading.values
    with pytest.raises(TypeError):
        reading.values[Metric.PULSE_RATE] = Quantity.of(1, Unit.PER_MINUTE)  # type: ignore[index]
    with pytest.raises(AttributeError):
        reading.kind = ReadingKind.HEART_RATE  # type: ignore[misc]


def test_device_key_prefers_system_id_then_address() -> None:
    assert DEVICE.key == "00:1C:05:FF:E8:74"
    assert DeviceIdentity(Transport.BLE, address="aa", system_id="001c05fffeffe874").key == "001C05FFFEFFE874"
    assert DeviceIdentity(Transport.SERIAL, model="CMS50D", serial="42").key == "CMS50D-42"
    with pytest.raises(ReadingError):
        _ = DeviceIdentity(Transport.SERIAL).key


def test_series_end_and_validation() -> None:
    start = datetime(2024, 6, 23, 22, 0, tzinfo=UTC)
    series = SampleSeries(start, timedelta(seconds=4), Unit.PERCENT, (97.0, None, 95.0))
    assert series.end == start + timedelta(seconds=12)
    with pytest.raises(ReadingError):
        SampleSeries(start, timedelta(0), Unit.PERCENT, ())
