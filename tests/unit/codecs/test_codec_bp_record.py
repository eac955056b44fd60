"""Blood Pressure Record (0x2B36) vectors: sequence number + wrapped 0x2A35."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.bp_record import decode_blood_pressure_record, encode_blood_pressure_record
from healthhut.drivers.codecs.registry import get_codec
from healthhut.errors import DecodeError
from healthhut.readings import DeviceIdentity, Metric, Transport

# header 0x03 (first+last), sequence 0x0123, uuid 0x2A35, then BPM-1.
RECORD_1 = bytes.fromhex("03 2301 352A 06 7800 5000 5D00 E807 06 17 0E 23 0A 4800")


def test_decodes_sequence_and_wrapped_measurement() -> None:
    record = decode_blood_pressure_record(RECORD_1)
    assert record.sequence == 0x0123
    assert record.measurement.systolic == Decimal(120)
    assert encode_blood_pressure_record(record) == RECORD_1


@pytest.mark.parametrize("hex_frame", ["01 2301 352A 0078005000 5D00", "03 2301 362A 00 7800 5000 5D00", "03 23"])
def test_rejects_segmented_foreign_and_short_records(hex_frame: str) -> None:
    with pytest.raises(DecodeError):
        decode_blood_pressure_record(bytes.fromhex(hex_frame))


def test_registered_codec_carries_the_sequence_into_the_reading() -> None:
    codec = get_codec("bls.record")
    context = ReadingContext(DeviceIdentity(Transport.BLE, address="C0:00:00:00:00:01"),
                             datetime(2024, 6, 23, 12, tzinfo=UTC), UTC)
    [reading] = codec.readings(codec.decode(RECORD_1), context)
    assert reading.sequence == 0x0123 and reading.values[Metric.SYSTOLIC].value == Decimal(120)
