"""Blood Pressure Service codecs: Measurement (0x2A35), Intermediate Cuff Pressure (0x2A36), Feature (0x2A49)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from healthhut.drivers.codecs.base import ReadingContext, SingleFrameCodec
from healthhut.drivers.codecs.gatt_time import DeviceTime, encode_date_time, read_date_time, reading_time
from healthhut.drivers.codecs.ieee11073 import (
    ByteReader,
    MedicalFloat,
    encode_sfloat,
    sfloat_from_raw,
    to_quantity,
    uint_bytes,
)
from healthhut.readings import AbsentReason, Metric, Reading, ReadingKind, StatusFlag, Unit

FLAG_KPA = 0x01
FLAG_TIME_STAMP = 0x02
FLAG_PULSE_RATE = 0x04
FLAG_USER_ID = 0x08
FLAG_STATUS = 0x10

UNKNOWN_USER = 255


class PulseRange(IntEnum):
    """The 2-bit pulse-rate range field (status bits 3-4)."""

    WITHIN_RANGE = 0
    ABOVE_UPPER_LIMIT = 1
    BELOW_LOWER_LIMIT = 2
    RESERVED = 3


@dataclass(frozen=True, slots=True)
class BloodPressureStatus:
    """The 16-bit Measurement Status, kept whole (reserved bits included) with named views."""

    bits: int

    @classmethod
    def of(cls, *, body_movement: bool = False, cuff_too_loose: bool = False, irregular_pulse: bool = False,
           pulse_range: PulseRange = PulseRange.WITHIN_RANGE, improper_position: bool = False,
           ) -> BloodPressureStatus:
        return cls(int(body_movement) | int(cuff_too_loose) << 1 | int(irregular_pulse) << 2
                   | int(pulse_range) << 3 | int(improper_position) << 5)

    @property
    def body_movement(self) -> bool:
        return bool(self.bits & 0x0001)

    @property
    def cuff_too_loose(self) -> bool:
        return bool(self.bits & 0x0002)

    @property
    def irregular_pulse(self) -> bool:
        return bool(self.bits & 0x0004)

    @property
    def pulse_range(self) -> PulseRange:
        return PulseRange((self.bits >> 3) & 0x3)

    @property
    def improper_position(self) -> bool:
        return bool(self.bits & 0x0020)

    def flags(self) -> frozenset[StatusFlag]:
        found = {flag for flag, present in ((StatusFlag.BODY_MOVEMENT, self.body_movement),
                                            (StatusFlag.CUFF_TOO_LOOSE, self.cuff_too_loose),
                                            (StatusFlag.IRREGULAR_PULSE, self.irregular_pulse),
                                            (StatusFlag.IMPROPER_POSITION, self.improper_position))
                 if present}
        if self.pulse_range is PulseRange.ABOVE_UPPER_LIMIT:
            found.add(StatusFlag.PULSE_ABOVE_RANGE)
        elif self.pulse_range is PulseRange.BELOW_LOWER_LIMIT:
            found.add(StatusFlag.PULSE_BELOW_RANGE)
        return frozenset(found)


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """A decoded 0x2A35 value. `unit` is Unit.MMHG or Unit.KPA for all three pressures; `raw` is the frame."""

    systolic: MedicalFloat
    diastolic: MedicalFloat
    mean_arterial: MedicalFloat
    unit: Unit = Unit.MMHG
    timestamp: DeviceTime | None = None
    pulse_rate: MedicalFloat | None = None
    user_id: int | None = None
    status: BloodPressureStatus | None = None
    surplus: bytes = b""
    raw: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class IntermediateCuffPressure:
    """A decoded 0x2A36 value: the live cuff pressure (the diastolic/MAP slots are ignored)."""

    cuff_pressure: MedicalFloat
    unit: Unit = Unit.MMHG
    timestamp: DeviceTime | None = None
    pulse_rate: MedicalFloat | None = None
    user_id: int | None = None
    status: BloodPressureStatus | None = None
    surplus: bytes = b""


class BloodPressureFeatureBits(IntFlag):
    BODY_MOVEMENT_DETECTION = 0x0001
    CUFF_FIT_DETECTION = 0x0002
    IRREGULAR_PULSE_DETECTION = 0x0004
    PULSE_RATE_RANGE_DETECTION = 0x0008
    MEASUREMENT_POSITION_DETECTION = 0x0010
    MULTIPLE_BONDS = 0x0020
    E2E_CRC = 0x0040
    USER_DATA_SERVICE = 0x0080
    USER_FACING_TIME = 0x0100


@dataclass(frozen=True, slots=True)
class BloodPressureFeature:
    """A decoded 0x2A49 value (unknown bits are kept in `supported`)."""

    supported: BloodPressureFeatureBits
    surplus: bytes = b""


@dataclass(frozen=True, slots=True)
class _BloodPressureFields:
    unit: Unit
    pressures: tuple[MedicalFloat, MedicalFloat, MedicalFloat]
    timestamp: DeviceTime | None
    pulse_rate: MedicalFloat | None
    user_id: int | None
    status: BloodPressureStatus | None
    surplus: bytes


def _layout(flags: int) -> struct.Struct:
    """The fields after the flags byte: three SFLOATs, then the optional ones the flags announce."""
    return struct.Struct("<HHH" + ("H5B" if flags & FLAG_TIME_STAMP else "") + ("H" if flags & FLAG_PULSE_RATE else "")
                         + ("B" if flags & FLAG_USER_ID else "") + ("H" if flags & FLAG_STATUS else ""))


# One layout per combination of the five defined flag bits (the three reserved bits announce nothing).
_LAYOUTS: tuple[struct.Struct, ...] = tuple(_layout(flags) for flags in range(0x20))


def _read_fields(data: bytes, codec: str) -> _BloodPressureFields:
    reader = ByteReader(data, codec)
    flags = reader.u8("flags")
    fields = reader.unpack(_LAYOUTS[flags & 0x1F])
    if fields is None:
        return _read_fields_one_by_one(reader, flags)
    # A whole frame: every field in one unpack (a measurement is decoded for every reading ingested).
    pressures = (sfloat_from_raw(fields[0]), sfloat_from_raw(fields[1]), sfloat_from_raw(fields[2]))
    at = 3
    timestamp = None
    if flags & FLAG_TIME_STAMP:
        timestamp = DeviceTime(*fields[3:9])
        at = 9
    pulse = None
    if flags & FLAG_PULSE_RATE:
        pulse = sfloat_from_raw(fields[at])
        at += 1
    user = None
    if flags & FLAG_USER_ID:
        user = fields[at]
        at += 1
    status = BloodPressureStatus(fields[at]) if flags & FLAG_STATUS else None
    return _BloodPressureFields(Unit.KPA if flags & FLAG_KPA else Unit.MMHG, pressures, timestamp, pulse,
                                user, status, reader.surplus())


def _read_fields_one_by_one(reader: ByteReader, flags: int) -> _BloodPressureFields:
    """A frame shorter than its flags demand: read in order, so the DecodeError names the missing field."""
    pressures = (reader.sfloat("systolic"), reader.sfloat("diastolic"), reader.sfloat("mean arterial pressure"))
    timestamp = read_date_time(reader) if flags & FLAG_TIME_STAMP else None
    pulse = reader.sfloat("pulse rate") if flags & FLAG_PULSE_RATE else None
    user = reader.u8("user id") if flags & FLAG_USER_ID else None
    status = BloodPressureStatus(reader.u16("measurement status")) if flags & FLAG_STATUS else None
    return _BloodPressureFields(Unit.KPA if flags & FLAG_KPA else Unit.MMHG, pressures, timestamp, pulse,
                                user, status, reader.surplus())


def _encode_fields(unit: Unit, pressures: tuple[MedicalFloat, MedicalFloat, MedicalFloat],
                   timestamp: DeviceTime | None, pulse_rate: MedicalFloat | None, user_id: int | None,
                   status: BloodPressureStatus | None) -> bytes:
    if unit not in (Unit.MMHG, Unit.KPA):
        raise ValueError(f"blood pressure unit must be mm[Hg] or kPa, not {unit.value}")
    flags = ((FLAG_KPA if unit is Unit.KPA else 0) | (FLAG_TIME_STAMP if timestamp is not None else 0)
             | (FLAG_PULSE_RATE if pulse_rate is not None else 0) | (FLAG_USER_ID if user_id is not None else 0)
             | (FLAG_STATUS if status is not None else 0))
    out = bytearray([flags])
    for value in pressures:
        out += encode_sfloat(value)
    if timestamp is not None:
        out += encode_date_time(timestamp)
    if pulse_rate is not None:
        out += encode_sfloat(pulse_rate)
    if user_id is not None:
        out += uint_bytes(user_id, 1, "user id")
    if status is not None:
        out += uint_bytes(status.bits, 2, "measurement status")
    return bytes(out)


def decode_blood_pressure_measurement(data: bytes) -> BloodPressureMeasurement:
    """Decode 0x2A35; a frame shorter than its flags demand raises DecodeError naming the offset."""
    f = _read_fields(data, "bls.measurement")
    return BloodPressureMeasurement(*f.pressures, unit=f.unit, timestamp=f.timestamp, pulse_rate=f.pulse_rate,
                                    user_id=f.user_id, status=f.status, surplus=f.surplus, raw=bytes(data))


def encode_blood_pressure_measurement(value: BloodPressureMeasurement) -> bytes:
    """Wire bytes for 0x2A35 (flags from the fields present, reserved bits 0; `surplus` is not sent)."""
    return _encode_fields(value.unit, (value.systolic, value.diastolic, value.mean_arterial), value.timestamp,
                          value.pulse_rate, value.user_id, value.status)


def decode_intermediate_cuff_pressure(data: bytes) -> IntermediateCuffPressure:
    f = _read_fields(data, "bls.intermediate-cuff")
    return IntermediateCuffPressure(f.pressures[0], unit=f.unit, timestamp=f.timestamp, pulse_rate=f.pulse_rate,
                                    user_id=f.user_id, status=f.status, surplus=f.surplus)


def encode_intermediate_cuff_pressure(value: IntermediateCuffPressure) -> bytes:
    """Wire bytes for 0x2A36; the unused diastolic and MAP slots carry NaN, as the spec asks."""
    nan = AbsentReason.NOT_A_NUMBER
    return _encode_fields(value.unit, (value.cuff_pressure, nan, nan), value.timestamp, value.pulse_rate,
                          value.user_id, value.status)


def decode_blood_pressure_feature(data: bytes) -> BloodPressureFeature:
    reader = ByteReader(data, "bls.feature")
    bits = BloodPressureFeatureBits(reader.u16("supported features"))
    return BloodPressureFeature(bits, reader.surplus())


def encode_blood_pressure_feature(value: BloodPressureFeature) -> bytes:
    return uint_bytes(int(value.supported), 2, "blood pressure features")


def patient_hint_for_user(user_id: int | None, context: ReadingContext) -> str | None:
    """A device user index as a patient hint; 255 ("unknown user") and absence fall back to the context."""
    if user_id is None or user_id == UNKNOWN_USER:
        return context.patient_hint
    return str(user_id)


class BloodPressureMeasurementCodec(SingleFrameCodec):
    name = "bls.measurement"
    summary = "Bluetooth Blood Pressure Measurement (0x2A35)"

    def decode(self, frame: bytes) -> BloodPressureMeasurement:
        return decode_blood_pressure_measurement(frame)

    def readings(self, decoded: BloodPressureMeasurement, context: ReadingContext) -> list[Reading]:
        values = {Metric.SYSTOLIC: to_quantity(decoded.systolic, decoded.unit),
                  Metric.DIASTOLIC: to_quantity(decoded.diastolic, decoded.unit),
                  Metric.MEAN_ARTERIAL: to_quantity(decoded.mean_arterial, decoded.unit)}
        if decoded.pulse_rate is not None:
            values[Metric.PULSE_RATE] = to_quantity(decoded.pulse_rate, Unit.PER_MINUTE)
        measured_at, source = reading_time(decoded.timestamp, context)
        return [Reading(
            kind=ReadingKind.BLOOD_PRESSURE, device=context.device, received_at=context.received_at,
            values=values, measured_at=measured_at, time_source=source, clock_skew=context.clock_skew,
            status=decoded.status.flags() if decoded.status is not None else frozenset(),
            raw=decoded.raw or encode_blood_pressure_measurement(decoded),
            patient_hint=patient_hint_for_user(decoded.user_id, context))]


class IntermediateCuffPressureCodec(SingleFrameCodec):
    name = "bls.intermediate-cuff"
    summary = "Bluetooth Intermediate Cuff Pressure (0x2A36), display only"

    def decode(self, frame: bytes) -> IntermediateCuffPressure:
        return decode_intermediate_cuff_pressure(frame)

    def readings(self, decoded: IntermediateCuffPressure, context: ReadingContext) -> list[Reading]:
        return []  # live cuff pressure while inflating: shown, never stored
