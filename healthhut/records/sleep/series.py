"""A night as numpy arrays (SpO2, pulse, airflow) and its conversion from and to oximetry-series Readings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from healthhut.errors import SleepDataError
from healthhut.readings import (
    DeviceIdentity,
    Metric,
    Reading,
    ReadingKind,
    SampleSeries,
    TimeSource,
    Unit,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Channel:
    """One evenly sampled signal; NaN marks an invalid or missing sample."""

    samples: FloatArray
    rate_hz: float
    unit: Unit | None = None
    label: str = ""

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate_hz


@dataclass(frozen=True, slots=True)
class ScoredEvent:
    """An event the recording device (or a scorer) put in the file, e.g. an EDF+ annotation."""

    onset_s: float
    duration_s: float | None
    kind: str          # normalised kind: "obstructive apnea", "hypopnea", "desaturation", "marker", ...
    text: str          # the text as found in the file


@dataclass(frozen=True, slots=True)
class NightRecording:
    """Everything the analysis needs from one night, whatever the source (Reading, EDF, device file).

    `spo2` and `pulse` are 1 Hz (slower devices are held sample-and-hold to 1 Hz); `airflow` keeps its rate.
    `sensor_off` is an optional 1 Hz mask of seconds the device flagged (finger out, probe error).
    """

    start: datetime
    spo2: Channel | None
    pulse: Channel | None = None
    airflow: Channel | None = None
    effort: Channel | None = None      # thoracic or abdominal effort (RIP), for apnea typing only
    sensor_off: BoolArray | None = None
    scored_events: tuple[ScoredEvent, ...] = field(default_factory=tuple)
    source: str = "reading"
    equipment: str | None = None      # the recorder's own name for itself (EDF+ "equipment"), if any

    @property
    def recorded_seconds(self) -> float:
        lengths = [c.seconds for c in (self.spo2, self.pulse, self.airflow) if c is not None]
        return max(lengths) if lengths else 0.0


def samples_to_array(samples: Sequence[float | None]) -> FloatArray:
    """Tuple of floats with None for invalid samples -> float64 array with NaN (numpy maps None to NaN)."""
    return np.asarray(samples, dtype=np.float64)


def to_one_hertz(samples: FloatArray, rate_hz: float) -> FloatArray:
    """Bring a slow (e.g. one value per 2 or 4 s) or fast oximetry channel to exactly 1 Hz.

    Slower channels are held (a 4-s Viatom value stands for each of its 4 seconds); faster ones, whole or
    fractional rates alike (12.5 Hz), are averaged per second ignoring NaN, so a second with any valid sample
    stays valid.
    """
    if rate_hz <= 0:
        raise SleepDataError("a channel needs a positive sampling rate")
    if abs(rate_hz - 1.0) < 1e-9:
        return samples
    seconds = int(len(samples) / rate_hz + 1e-9)
    if rate_hz < 1.0:
        return samples[np.floor(np.arange(seconds) * rate_hz + 1e-9).astype(np.int64)]
    bounds = np.ceil(np.arange(seconds + 1) * rate_hz - 1e-9).astype(np.int64)
    if seconds == 0:
        return np.zeros(0)
    body = samples[: bounds[-1]]
    valid = ~np.isnan(body)
    sums = np.add.reduceat(np.where(valid, body, 0.0), bounds[:-1])
    counts = np.add.reduceat(valid.astype(np.int64), bounds[:-1])
    out = np.full(seconds, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def _series_rate(series: SampleSeries) -> float:
    return 1.0 / series.period.total_seconds()


def night_from_reading(reading: Reading) -> NightRecording:
    """An OXIMETRY_SERIES Reading (from a driver, or stored) -> NightRecording."""
    if reading.kind is not ReadingKind.OXIMETRY_SERIES:
        raise SleepDataError(f"a {reading.kind.value} reading is not an overnight recording")
    spo2_series = reading.series.get(Metric.SPO2)
    if spo2_series is None:
        raise SleepDataError("the recording has no SpO2 series")
    start = spo2_series.start
    spo2 = Channel(to_one_hertz(samples_to_array(spo2_series.samples), _series_rate(spo2_series)),
                   1.0, Unit.PERCENT, "SpO2")
    pulse = None
    pulse_series = reading.series.get(Metric.PULSE_RATE)
    if pulse_series is not None:
        pulse = Channel(to_one_hertz(samples_to_array(pulse_series.samples), _series_rate(pulse_series)),
                        1.0, Unit.PER_MINUTE, "Pulse")
    airflow = None
    flow_series = reading.series.get(Metric.AIRFLOW)
    if flow_series is not None:
        airflow = Channel(samples_to_array(flow_series.samples), _series_rate(flow_series),
                          flow_series.unit, "Airflow")
        if flow_series.start != start:
            raise SleepDataError("the airflow and SpO2 series must start together")
    return NightRecording(start=start, spo2=spo2, pulse=pulse, airflow=airflow, source="reading")


def _series(channel: Channel, start: datetime, unit: Unit) -> SampleSeries:
    values = channel.samples
    samples: tuple[float | None, ...] = tuple(
        None if v != v else v for v in values.tolist())  # NaN != NaN: NaN -> None
    return SampleSeries(start=start, period=timedelta(seconds=1.0 / channel.rate_hz), unit=unit,
                        samples=samples)


def reading_from_night(night: NightRecording, device: DeviceIdentity, received_at: datetime) -> Reading:
    """NightRecording (e.g. an imported EDF) -> the OXIMETRY_SERIES Reading the store keeps.

    The Reading is the source of truth for later re-analysis (`sleep analyze --reading ID`), so the airflow
    channel travels with it.
    """
    series: dict[Metric, SampleSeries] = {}
    if night.spo2 is not None:
        series[Metric.SPO2] = _series(night.spo2, night.start, Unit.PERCENT)
    if night.pulse is not None:
        series[Metric.PULSE_RATE] = _series(night.pulse, night.start, Unit.PER_MINUTE)
    if night.airflow is not None:
        series[Metric.AIRFLOW] = _series(night.airflow, night.start, night.airflow.unit or Unit.ONE)
    if not series:
        raise SleepDataError("the recording has no usable channel")
    return Reading(kind=ReadingKind.OXIMETRY_SERIES, device=device, received_at=received_at,
                   measured_at=night.start, time_source=TimeSource.DEVICE, series=series)
