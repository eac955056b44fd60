"""Readings and channels to 1 Hz arrays and back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from healthhut.errors import SleepDataError
from healthhut.readings import DeviceIdentity, Metric, Reading, ReadingKind, SampleSeries, TimeSource, Transport, Unit
from healthhut.records.sleep.series import night_from_reading, reading_from_night, to_one_hertz
from healthhut.records.sleep.synthetic import NightSpec, synthetic_night

START = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
DEVICE = DeviceIdentity(transport=Transport.SERIAL, model="CMS50F", serial="42")


def test_slow_series_are_held_and_fast_ones_averaged() -> None:
    assert to_one_hertz(np.array([95.0, 90.0]), 0.25).tolist() == [95.0] * 4 + [90.0] * 4
    assert to_one_hertz(np.array([95.0, 90.0, 91.0]), 0.5).tolist() == [95, 95, 90, 90, 91, 91]
    fast = np.array([96.0, 94.0, np.nan, np.nan, 90.0, np.nan])
    assert to_one_hertz(fast, 2.0).tolist()[0] == 95.0
    out = to_one_hertz(fast, 2.0)
    assert np.isnan(out[1]) and out[2] == 90.0
    fractional = to_one_hertz(np.arange(25, dtype=float), 12.5)     # seconds: samples 0-12, 13-24
    assert fractional.tolist() == [6.0, 18.5]
    with pytest.raises(SleepDataError):
        to_one_hertz(np.zeros(3), 0.0)


def test_reading_round_trip_keeps_none_and_airflow() -> None:
    night = synthetic_night(NightSpec(hours=0.1, flow_hz=10.0, finger_out=((100, 50),)))
    reading = reading_from_night(night, DEVICE, START)
    assert reading.kind is ReadingKind.OXIMETRY_SERIES and reading.measured_at == night.start
    assert reading.series[Metric.PULSE_RATE].samples[120] is None
    assert reading.series[Metric.AIRFLOW].period == timedelta(seconds=0.1)
    back = night_from_reading(reading)
    assert back.spo2 is not None and night.spo2 is not None
    assert np.array_equal(back.spo2.samples, night.spo2.samples, equal_nan=True)
    assert back.airflow is not None and back.airflow.rate_hz == pytest.approx(10.0)


def test_only_oximetry_series_with_spo2_are_nights() -> None:
    spot = Reading(kind=ReadingKind.SPO2, device=DEVICE, received_at=START, measured_at=START,
                   time_source=TimeSource.DEVICE)
    with pytest.raises(SleepDataError, match="not an overnight recording"):
        night_from_reading(spot)
    pulse_only = Reading(kind=ReadingKind.OXIMETRY_SERIES, device=DEVICE, received_at=START, measured_at=START,
                         time_source=TimeSource.DEVICE,
                         series={Metric.PULSE_RATE: SampleSeries(START, timedelta(seconds=1), Unit.PER_MINUTE,
                                                                 (60.0, 61.0))})
    with pytest.raises(SleepDataError, match="no SpO2"):
        night_from_reading(pulse_only)
