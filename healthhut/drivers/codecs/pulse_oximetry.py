"""Pulse Oximeter Service codecs: PLX Spot-check (0x2A5E), PLX Continuous (0x2A5F) and PLX Features (0x2A60)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag

from healthhut.drivers.codecs.base import ReadingContext, SingleFrameCodec
from healthhut.drivers.codecs.gatt_time import DeviceTime, encode_date_time, read_date_time, reading_time
from healthhut.drivers.codecs.ieee11073 import ByteReader, MedicalFloat, encode_sfloat, to_quantity, uint_bytes
from healthhut.readings import Metric, Quantity, Reading, ReadingKind, StatusFlag, Unit

SPOT_TIMESTAMP = 0x01
SPOT_MEASUREMENT_STATUS = 0x02
SPOT_DEVICE_SENSOR_STATUS = 0x04
SPOT_PULSE_AMPLITUDE_INDEX = 0x08
SPOT_CLOCK_NOT_SET = 0x10

CONT_FAST = 0x01
CONT_SLOW = 0x02
CONT_MEASUREMENT_STATUS = 0x04
CONT_DEVICE_SENSOR_STATUS = 0x08
CONT_PULSE_AMPLITUDE_INDEX = 0x10


class PlxMeasurementStatus(IntFlag):
    """PLX Measurement Status (16-bit; bits 0-4 reserved, kept if set)."""

    MEASUREMENT_ONGOING = 1 << 5
    EARLY_ESTIMATED_DATA = 1 << 6
    VALIDATED_DATA = 1 << 7
    FULLY_QUALIFIED_DATA = 1 << 8
    DATA_FROM_STORAGE = 1 << 9
    DATA_FOR_DEMONSTRATION = 1 << 10
    DATA_FOR_TESTING = 1 << 11
    CALIBRATION_ONGOING = 1 << 12
    MEASUREMENT_UNAVAILABLE = 1 << 13
    QUESTIONABLE_MEASUREMENT = 1 << 14
    INVALID_MEASUREMENT = 1 << 15


_MEASUREMENT_FLAGS: tuple[StatusFlag, ...] = (
    StatusFlag.MEASUREMENT_ONGOING, StatusFlag.EARLY_ESTIMATE, StatusFlag.VALIDATED, StatusFlag.FULLY_QUALIFIED,
    StatusFlag.FROM_STORAGE, StatusFlag.DEMONSTRATION_DATA, StatusFlag.TESTING_DATA,
    StatusFlag.CALIBRATION_ONGOING, StatusFlag.MEASUREMENT_UNAVAILABLE, StatusFlag.QUESTIONABLE,
    StatusFlag.INVALID)   # bits 5..15

# Device and Sensor Status bits 0..15, in BLE bit order (bits 16-23 are reserved).
_DEVICE_SENSOR_FLAGS: tuple[StatusFlag, ...] = (
    StatusFlag.EXTENDED_DISPLAY_UPDATE, StatusFlag.EQUIPMENT_MALFUNCTION,
    StatusFlag.SIGNAL_PROCESSING_IRREGULARITY, StatusFlag.INADEQUATE_SIGNAL, StatusFlag.POOR_SIGNAL,
    StatusFlag.LOW_PERFUSION, StatusFlag.ERRATIC_SIGNAL, StatusFlag.NON_PULSATILE_SIGNAL,
    StatusFlag.QUESTIONABLE_PULSE, StatusFlag.SIGNAL_ANALYSIS_ONGOING, StatusFlag.SENSOR_INTERFERENCE,
    StatusFlag.SENSOR_UNCONNECTED, StatusFlag.UNKNOWN_SENSOR, StatusFlag.SENSOR_DISPLACED,
    StatusFlag.SENSOR_MALFUNCTIONING, StatusFlag.SENSOR_DISCONNECTED)


def measurement_status_flags(bits: int) -> frozenset[StatusFlag]:
    return frozenset(flag for i, flag in enumerate(_MEASUREMENT_FLAGS) if bits & (1 << (i + 5)))


def device_sensor_status_flags(bits: int) -> frozenset[StatusFlag]:
    """StatusFlags for a 24-bit Device and Sensor Status (bit n of the field -> the n-th named condition)."""
    return frozenset(flag for i, flag in enumerate(_DEVICE_SENSOR_FLAGS) if bits & (1 << i))


@dataclass(frozen=True, slots=True)
class SpotCheckMeasurement:
    """A decoded 0x2A5E value; `device_sensor_status` is the raw 24-bit field (see device_sensor_status_flags)."""

    spo2: MedicalFloat
    pulse_rate: MedicalFloat
    timestamp: DeviceTime | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_sensor_status: int | None = None
    pulse_amplitude_index: MedicalFloat | None = None
    clock_not_set: bool = False
    surplus: bytes = b""
    raw: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SpO2PulseRate:
    """One SpO2 (%) + pulse rate (/min) pair, as the continuous measurement sends three of them."""

    spo2: MedicalFloat
    pulse_rate: MedicalFloat


@dataclass(frozen=True, slots=True)
class ContinuousMeasurement:
    """A decoded 0x2A5F value: no timestamp, the receive time is the measurement time."""

    normal: SpO2PulseRate
    fast: SpO2PulseRate | None = None
    slow: SpO2PulseRate | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_sensor_status: int | None = None
    pulse_amplitude_index: MedicalFloat | None = None
    surplus: bytes = b""
    raw: bytes = field(default=b"", compare=False, repr=False)


class PlxSupportedFeatures(IntFlag):
    MEASUREMENT_STATUS = 0x0001
    DEVICE_SENSOR_STATUS = 0x0002
    SPOT_CHECK_STORAGE = 0x0004
    SPOT_CHECK_TIMESTAMP = 0x0008
    SPO2PR_FAST = 0x0010
    SPO2PR_SLOW = 0x0020
    PULSE_AMPLITUDE_INDEX = 0x0040
    MULTIPLE_BONDS = 0x0080


@dataclass(frozen=True, slots=True)
class PlxFeatures:
    """A decoded 0x2A60 value; the two support fields are present exactly when their feature bit is set."""

    supported: PlxSupportedFeatures
    measurement_status_support: PlxMeasurementStatus | None = None
    device_sensor_status_support: int | None = None
    surplus: bytes = b""


def decode_spot_check(data: bytes) -> SpotCheckMeasurement:
    reader = ByteReader(data, "plx.spot-check")
    flags = reader.u8("flags")
    spo2, pulse = reader.sfloat("SpO2"), reader.sfloat("pulse rate")
    timestamp = read_date_time(reader) if flags & SPOT_TIMESTAMP else None
    status = (PlxMeasurementStatus(reader.u16("measurement status"))
              if flags & SPOT_MEASUREMENT_STATUS else None)
    sensor = reader.u24("device and sensor status") if flags & SPOT_DEVICE_SENSOR_STATUS else None
    pai = reader.sfloat("pulse amplitude index") if flags & SPOT_PULSE_AMPLITUDE_INDEX else None
    return SpotCheckMeasurement(spo2, pulse, timestamp, status, sensor, pai, bool(flags & SPOT_CLOCK_NOT_SET),
                                reader.surplus(), bytes(data))


def _status_tail(status: PlxMeasurementStatus | None, sensor: int | None, pai: MedicalFloat | None) -> bytes:
    out = b""
    if status is not None:
        out += uint_bytes(int(status), 2, "measurement status")
    if sensor is not None:
        out += uint_bytes(sensor, 3, "device and sensor status")
    if pai is not None:
        out += encode_sfloat(pai)
    return out


def encode_spot_check(value: SpotCheckMeasurement) -> bytes:
    flags = ((SPOT_TIMESTAMP if value.timestamp is not None else 0)
             | (SPOT_MEASUREMENT_STATUS if value.measurement_status is not None else 0)
             | (SPOT_DEVICE_SENSOR_STATUS if value.device_sensor_status is not None else 0)
             | (SPOT_PULSE_AMPLITUDE_INDEX if value.pulse_amplitude_index is not None else 0)
             | (SPOT_CLOCK_NOT_SET if value.clock_not_set else 0))
    out = bytes([flags]) + encode_sfloat(value.spo2) + encode_sfloat(value.pulse_rate)
    if value.timestamp is not None:
        out += encode_date_time(value.timestamp)
    return out + _status_tail(value.measurement_status, value.device_sensor_status,
                              value.pulse_amplitude_index)


def decode_continuous(data: bytes) -> ContinuousMeasurement:
    reader = ByteReader(data, "plx.continuous")
    flags = reader.u8("flags")
    normal = SpO2PulseRate(reader.sfloat("SpO2"), reader.sfloat("pulse rate"))
    fast = (SpO2PulseRate(reader.sfloat("SpO2 fast"), reader.sfloat("pulse rate fast"))
            if flags & CONT_FAST else None)
    slow = (SpO2PulseRate(reader.sfloat("SpO2 slow"), reader.sfloat("pulse rate slow"))
            if flags & CONT_SLOW else None)
    status = (PlxMeasurementStatus(reader.u16("measurement status"))
              if flags & CONT_MEASUREMENT_STATUS else None)
    sensor = reader.u24("device and sensor status") if flags & CONT_DEVICE_SENSOR_STATUS else None
    pai = reader.sfloat("pulse amplitude index") if flags & CONT_PULSE_AMPLITUDE_INDEX else None
    return ContinuousMeasurement(normal, fast, slow, status, sensor, pai, reader.surplus(), bytes(data))


def encode_continuous(value: ContinuousMeasurement) -> bytes:
    flags = ((CONT_FAST if value.fast is not None else 0) | (CONT_SLOW if value.slow is not None else 0)
             | (CONT_MEASUREMENT_STATUS if value.measurement_status is not None else 0)
             | (CONT_DEVICE_SENSOR_STATUS if value.device_sensor_status is not None else 0)
             | (CONT_PULSE_AMPLITUDE_INDEX if value.pulse_amplitude_index is not None else 0))
    out = bytes([flags])
    for pair in (value.normal, value.fast, value.slow):
        if pair is not None:
            out += encode_sfloat(pair.spo2) + encode_sfloat(pair.pulse_rate)
    return out + _status_tail(value.measurement_status, value.device_sensor_status,
                              value.pulse_amplitude_index)


def decode_plx_features(data: bytes) -> PlxFeatures:
    reader = ByteReader(data, "plx.features")
    supported = PlxSupportedFeatures(reader.u16("supported features"))
    status = (PlxMeasurementStatus(reader.u16("measurement status support"))
              if supported & PlxSupportedFeatures.MEASUREMENT_STATUS else None)
    sensor = (reader.u24("device and sensor status support")
              if supported & PlxSupportedFeatures.DEVICE_SENSOR_STATUS else None)
    return PlxFeatures(supported, status, sensor, reader.surplus())


def encode_plx_features(value: PlxFeatures) -> bytes:
    """Wire bytes for 0x2A60; ValueError if a support field disagrees with its feature bit."""
    has_status = bool(value.supported & PlxSupportedFeatures.MEASUREMENT_STATUS)
    has_sensor = bool(value.supported & PlxSupportedFeatures.DEVICE_SENSOR_STATUS)
    if has_status != (value.measurement_status_support is not None):
        raise ValueError("measurement status support must be given exactly when its feature bit is set")
    if has_sensor != (value.device_sensor_status_support is not None):
        raise ValueError("device and sensor status support must be given exactly when its feature bit is set")
    out = uint_bytes(int(value.supported), 2, "supported features")
    if value.measurement_status_support is not None:
        out += uint_bytes(int(value.measurement_status_support), 2, "measurement status support")
    if value.device_sensor_status_support is not None:
        out += uint_bytes(value.device_sensor_status_support, 3, "device and sensor status support")
    return out


def _plx_values(spo2: MedicalFloat, pulse: MedicalFloat, pai: MedicalFloat | None) -> dict[Metric, Quantity]:
    values = {Metric.SPO2: to_quantity(spo2, Unit.PERCENT), Metric.PULSE_RATE: to_quantity(pulse, Unit.PER_MINUTE)}
    if pai is not None:
        values[Metric.PULSE_AMPLITUDE_INDEX] = to_quantity(pai, Unit.PERCENT)
    return values


def _plx_status(status: PlxMeasurementStatus | None, sensor: int | None) -> frozenset[StatusFlag]:
    found: frozenset[StatusFlag] = frozenset()
    if status is not None:
        found |= measurement_status_flags(int(status))
    if sensor is not None:
        found |= device_sensor_status_flags(sensor)
    return found


class SpotCheckCodec(SingleFrameCodec):
    name = "plx.spot-check"
    summary = "Bluetooth PLX Spot-check Measurement (0x2A5E)"

    def decode(self, frame: bytes) -> SpotCheckMeasurement:
        return decode_spot_check(frame)

    def readings(self, decoded: SpotCheckMeasurement, context: ReadingContext) -> list[Reading]:
        status = _plx_status(decoded.measurement_status, decoded.device_sensor_status)
        if decoded.clock_not_set:
            status |= {StatusFlag.CLOCK_NOT_SET}
        measured_at, source = reading_time(decoded.timestamp, context, clock_not_set=decoded.clock_not_set)
        return [Reading(
            kind=ReadingKind.SPO2, device=context.device, received_at=context.received_at,
            values=_plx_values(decoded.spo2, decoded.pulse_rate, decoded.pulse_amplitude_index),
            measured_at=measured_at, time_source=source, clock_skew=context.clock_skew, status=status,
            raw=decoded.raw or encode_spot_check(decoded), patient_hint=context.patient_hint)]


class ContinuousCodec(SingleFrameCodec):
    name = "plx.continuous"
    summary = "Bluetooth PLX Continuous Measurement (0x2A5F); one Reading per frame, receive time"

    def decode(self, frame: bytes) -> ContinuousMeasurement:
        return decode_continuous(frame)

    def readings(self, decoded: ContinuousMeasurement, context: ReadingContext) -> list[Reading]:
        return [Reading(
            kind=ReadingKind.SPO2, device=context.device, received_at=context.received_at,
            values=_plx_values(decoded.normal.spo2, decoded.normal.pulse_rate, decoded.pulse_amplitude_index),
            measured_at=context.received_at, time_source=reading_time(None, context)[1],
            clock_skew=context.clock_skew,
            status=_plx_status(decoded.measurement_status, decoded.device_sensor_status),
            raw=decoded.raw or encode_continuous(decoded), patient_hint=context.patient_hint)]
