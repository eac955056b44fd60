"""Blood Pressure Record (0x2B36, BPS v1.1): a stored measurement wrapped with its sequence number.

Layout: segmentation header (bit 0 first segment, bit 1 last segment, bits 2-7 rolling counter), sequence
number uint16, UUID uint16 of the wrapped characteristic (0x2A35), the wrapped value. Only unsegmented
records (first and last set) are accepted: at the gateway's 247-byte MTU no real record needs more.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from healthhut.drivers.codecs.base import ReadingContext, SingleFrameCodec
from healthhut.drivers.codecs.blood_pressure import (
    BloodPressureMeasurement,
    BloodPressureMeasurementCodec,
    decode_blood_pressure_measurement,
    encode_blood_pressure_measurement,
)
from healthhut.drivers.codecs.ieee11073 import ByteReader, uint_bytes
from healthhut.errors import DecodeError
from healthhut.readings import Reading

MEASUREMENT_UUID = 0x2A35
FIRST_SEGMENT = 0x01
LAST_SEGMENT = 0x02


@dataclass(frozen=True, slots=True)
class BloodPressureRecord:
    """One stored record: its device sequence number and the measurement it wraps."""

    sequence: int
    measurement: BloodPressureMeasurement
    counter: int = 0


def decode_blood_pressure_record(data: bytes) -> BloodPressureRecord:
    reader = ByteReader(data, "bls.record")
    header = reader.u8("segmentation header")
    if header & (FIRST_SEGMENT | LAST_SEGMENT) != FIRST_SEGMENT | LAST_SEGMENT:
        raise DecodeError("segmented records are not supported", offset=0, codec="bls.record")
    sequence = reader.u16("sequence number")
    wrapped = reader.u16("wrapped characteristic UUID")
    if wrapped != MEASUREMENT_UUID:
        raise DecodeError(f"wraps 0x{wrapped:04X}, not a Blood Pressure Measurement", offset=3,
                          codec="bls.record")
    measurement = decode_blood_pressure_measurement(data[5:])
    return BloodPressureRecord(sequence, measurement, header >> 2)


def encode_blood_pressure_record(value: BloodPressureRecord) -> bytes:
    header = FIRST_SEGMENT | LAST_SEGMENT | (value.counter & 0x3F) << 2
    return (bytes([header]) + uint_bytes(value.sequence, 2, "sequence number")
            + uint_bytes(MEASUREMENT_UUID, 2, "uuid") + encode_blood_pressure_measurement(value.measurement))


class BloodPressureRecordCodec(SingleFrameCodec):
    name = "bls.record"
    summary = "Bluetooth Blood Pressure Record (0x2B36): stored measurement with its sequence number"

    def decode(self, frame: bytes) -> BloodPressureRecord:
        return decode_blood_pressure_record(frame)

    def readings(self, decoded: BloodPressureRecord, context: ReadingContext) -> list[Reading]:
        return [replace(r, sequence=decoded.sequence)
                for r in BloodPressureMeasurementCodec().readings(decoded.measurement, context)]
