"""The device-neutral Reading and its parts: the one type every room agrees on.

Drivers produce Readings and nothing else; records turns them into FHIR; the gateway attributes and
corrects them. Stdlib only, so that every room may import it.

Values are `Decimal` so the device's resolution survives (an SFLOAT 2.00 stays 2.00) and carry their UCUM
unit. A value a device could not give (NaN, NRes, infinity, out of range, failed measurement) is a
`Quantity` with `value=None` and an `AbsentReason`: never a bare float NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from healthhut.errors import ReadingError


class Unit(StrEnum):
    """UCUM codes for every unit a driver may report."""

    MMHG = "mm[Hg]"
    KPA = "kPa"
    PER_MINUTE = "/min"
    PERCENT = "%"
    CELSIUS = "Cel"
    FAHRENHEIT = "[degF]"
    KILOGRAM = "kg"
    POUND = "[lb_av]"
    METRE = "m"
    INCH = "[in_i]"
    KG_PER_M2 = "kg/m2"
    SECOND = "s"
    MINUTE = "min"
    HOUR = "h"
    PER_HOUR = "/h"
    COUNT = "{#}"
    LITRE_PER_MINUTE = "L/min"
    ONE = "1"


class AbsentReason(StrEnum):
    """Why a value is missing; records maps these to FHIR data-absent-reason codes."""

    NOT_A_NUMBER = "not-a-number"          # IEEE 11073 NaN: the device says the result is invalid
    NOT_REPRESENTABLE = "not-representable"  # NRes: outside the resolution/range of the encoding
    POSITIVE_INFINITY = "positive-infinity"
    NEGATIVE_INFINITY = "negative-infinity"
    RESERVED = "reserved"                  # an RFU special value: a device bug, kept as an error
    MEASUREMENT_FAILED = "measurement-failed"  # e.g. weight 0xFFFF "measurement unsuccessful", cuff "Err"
    OUT_OF_RANGE = "out-of-range"          # physiologically impossible or outside the device's range
    SENSOR_OFF = "sensor-off"              # finger out, probe off


class ReadingKind(StrEnum):
    """What a Reading measures; one kind may become several Observations (BP panel + heart rate)."""

    BLOOD_PRESSURE = "blood_pressure"
    HEART_RATE = "heart_rate"
    SPO2 = "spo2"
    PULSE_RATE = "pulse_rate"
    BODY_TEMPERATURE = "body_temperature"
    BODY_WEIGHT = "body_weight"
    SLEEP_SUMMARY = "sleep_summary"
    OXIMETRY_SERIES = "oximetry_series"


class Metric(StrEnum):
    """Names of the values inside a Reading."""

    SYSTOLIC = "systolic"
    DIASTOLIC = "diastolic"
    MEAN_ARTERIAL = "mean_arterial"
    PULSE_RATE = "pulse_rate"
    SPO2 = "spo2"
    PULSE_AMPLITUDE_INDEX = "pulse_amplitude_index"
    BODY_TEMPERATURE = "body_temperature"
    BODY_WEIGHT = "body_weight"
    BODY_HEIGHT = "body_height"
    BMI = "bmi"
    PLETH = "pleth"
    MOTION = "motion"
    AIRFLOW = "airflow"


class StatusFlag(StrEnum):
    """Device-reported conditions of one measurement (BLS, PLX and vendor status bits)."""

    # Blood Pressure Measurement Status (0x2A35)
    BODY_MOVEMENT = "body_movement"
    CUFF_TOO_LOOSE = "cuff_too_loose"
    IRREGULAR_PULSE = "irregular_pulse"
    PULSE_ABOVE_RANGE = "pulse_above_range"
    PULSE_BELOW_RANGE = "pulse_below_range"
    IMPROPER_POSITION = "improper_position"
    # PLX Measurement Status (0x2A5E/0x2A5F)
    MEASUREMENT_ONGOING = "measurement_ongoing"
    EARLY_ESTIMATE = "early_estimate"
    VALIDATED = "validated"
    FULLY_QUALIFIED = "fully_qualified"
    FROM_STORAGE = "from_storage"
    DEMONSTRATION_DATA = "demonstration_data"
    TESTING_DATA = "testing_data"
    CALIBRATION_ONGOING = "calibration_ongoing"
    MEASUREMENT_UNAVAILABLE = "measurement_unavailable"
    QUESTIONABLE = "questionable"
    INVALID = "invalid"
    # PLX Device and Sensor Status, BLE bit order 0..15
    EXTENDED_DISPLAY_UPDATE = "extended_display_update"
    EQUIPMENT_MALFUNCTION = "equipment_malfunction"
    SIGNAL_PROCESSING_IRREGULARITY = "signal_processing_irregularity"
    INADEQUATE_SIGNAL = "inadequate_signal"
    POOR_SIGNAL = "poor_signal"
    LOW_PERFUSION = "low_perfusion"
    ERRATIC_SIGNAL = "erratic_signal"
    NON_PULSATILE_SIGNAL = "non_pulsatile_signal"
    QUESTIONABLE_PULSE = "questionable_pulse"
    SIGNAL_ANALYSIS_ONGOING = "signal_analysis_ongoing"
    SENSOR_INTERFERENCE = "sensor_interference"
    SENSOR_UNCONNECTED = "sensor_unconnected"
    UNKNOWN_SENSOR = "unknown_sensor"
    SENSOR_DISPLACED = "sensor_displaced"
    SENSOR_MALFUNCTIONING = "sensor_malfunctioning"
    SENSOR_DISCONNECTED = "sensor_disconnected"
    # vendor oximeters (Contec, BerryMed)
    FINGER_OUT = "finger_out"
    SEARCHING = "searching"
    # time
    CLOCK_NOT_SET = "clock_not_set"


class TimeSource(StrEnum):
    """Where `measured_at` came from: decides whether the gateway may correct it."""

    DEVICE = "device"          # the device stamped it with its own clock
    RECEIPT = "receipt"        # the device has no timestamp: the gateway's receive time is the time
    UNKNOWN = "unknown"        # the device stamped it with an unset clock (year 0, "clock not set")


class Transport(StrEnum):
    BLE = "ble"
    SERIAL = "serial"
    MQTT = "mqtt"
    FILE = "file"


def require_aware(name: str, value: datetime) -> None:
    """Reject naive datetimes: a time without an offset cannot become a FHIR dateTime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ReadingError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Quantity:
    """A value with its UCUM unit, or an absent marker with the reason."""

    value: Decimal | None
    unit: Unit
    absent: AbsentReason | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.absent is None):
            raise ReadingError("a Quantity has either a value or an absent reason, not both or neither")
        if self.value is not None and not self.value.is_finite():
            raise ReadingError("a Quantity value must be finite; use an AbsentReason")

    @classmethod
    def of(cls, value: Decimal | int | str, unit: Unit) -> Quantity:
        return cls(Decimal(value), unit)

    @classmethod
    def missing(cls, reason: AbsentReason, unit: Unit) -> Quantity:
        return cls(None, unit, reason)

    @property
    def present(self) -> bool:
        return self.value is not None


@dataclass(frozen=True, slots=True)
class SampleSeries:
    """Evenly spaced samples (an overnight SpO2 trace); `None` marks an invalid or missing sample."""

    start: datetime
    period: timedelta
    unit: Unit
    samples: tuple[float | None, ...]

    def __post_init__(self) -> None:
        require_aware("SampleSeries.start", self.start)
        if self.period <= timedelta(0):
            raise ReadingError("a series period must be positive")

    @property
    def end(self) -> datetime:
        return self.start + self.period * len(self.samples)


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Who produced a reading. `key` is the stable local id used for device rows and identifiers."""

    transport: Transport
    address: str | None = None      # Bluetooth address "AA:BB:..", serial port path or URL
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    system_id: str | None = None    # 16 upper-case hex digits, canonical EUI-64 order (see records.identity)
    firmware: str | None = None
    hardware: str | None = None
    software: str | None = None

    @property
    def key(self) -> str:
        """A stable local device key: system id, else (serial devices) model+serial, else address."""
        if self.system_id:
            return self.system_id.upper()
        if self.transport is not Transport.BLE and self.serial:
            # a serial port path names the socket, not the device: model + serial number survives a re-plug
            return f"{self.model or 'device'}-{self.serial}"
        if self.address:
            # Bluetooth addresses are case-insensitive; port paths and URLs are not.
            return self.address.upper() if self.transport is Transport.BLE else self.address
        if self.serial:
            return f"{self.model or 'device'}-{self.serial}"
        raise ReadingError("a device needs a system id, an address or a serial number")


def _frozen_mapping(values: Mapping[Metric, Quantity]) -> Mapping[Metric, Quantity]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement as a device delivered it, before any attribution or correction.

    `measured_at` is the device's own timestamp (its wall clock, given the site's offset by the driver) when
    `time_source` is DEVICE; the receive time when RECEIPT; `None` when the device clock was unset.
    `clock_skew` is gateway clock minus device clock, read on the same connection, if known.
    """

    kind: ReadingKind
    device: DeviceIdentity
    received_at: datetime
    values: Mapping[Metric, Quantity] = field(default_factory=dict)
    measured_at: datetime | None = None
    time_source: TimeSource = TimeSource.RECEIPT
    clock_skew: timedelta | None = None
    status: frozenset[StatusFlag] = frozenset()
    sequence: int | None = None
    raw: bytes = b""
    patient_hint: str | None = None
    series: Mapping[Metric, SampleSeries] = field(default_factory=dict)
    body_site: str | None = None    # e.g. temperature type "ear", "armpit"

    def __post_init__(self) -> None:
        require_aware("received_at", self.received_at)
        if self.measured_at is not None:
            require_aware("measured_at", self.measured_at)
        if self.time_source is TimeSource.UNKNOWN and self.measured_at is not None:
            raise ReadingError("a reading with an unknown device time has no measured_at")
        if self.time_source is not TimeSource.UNKNOWN and self.measured_at is None:
            raise ReadingError("measured_at is required unless the device time is unknown")
        object.__setattr__(self, "values", _frozen_mapping(self.values))
        object.__setattr__(self, "series", MappingProxyType(dict(self.series)))
        object.__setattr__(self, "status", frozenset(self.status))

    @property
    def effective_at(self) -> datetime:
        """The best estimate of when the measurement happened, on the gateway's timeline."""
        if self.measured_at is None:
            return self.received_at
        if self.time_source is TimeSource.DEVICE and self.clock_skew is not None:
            return self.measured_at + self.clock_skew
        return self.measured_at

    @property
    def time_corrected(self) -> bool:
        return (self.time_source is TimeSource.DEVICE and self.clock_skew is not None
                and self.clock_skew != timedelta(0))
