"""Blood Pressure Measurement / Intermediate Cuff Pressure / Feature: reference vectors, every flag combination,
truncation offsets, and the mapping to Readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.blood_pressure import (
    BloodPressureFeature,
    BloodPressureFeatureBits,
    BloodPressureMeasurement,
    BloodPressureMeasurementCodec,
    BloodPressureStatus,
    IntermediateCuffPressure,
    IntermediateCuffPressureCodec,
    PulseRange,
    decode_blood_pressure_feature,
    decode_blood_pressure_measurement,
    decode_intermediate_cuff_pressure,
    encode_blood_pressure_feature,
    encode_blood_pressure_measurement,
    encode_intermediate_cuff_pressure,
)
from healthhut.drivers.codecs.gatt_time import DeviceTime
from healthhut.errors import DecodeError
from healthhut.readings import (
    AbsentReason,
    DeviceIdentity,
    Metric,
    Reading,
    ReadingKind,
    StatusFlag,
    TimeSource,
    Transport,
    Unit,
)

NAN = AbsentReason.NOT_A_NUMBER
STAMP = DeviceTime(2024, 6, 23, 14, 35, 10)
ZONE = ZoneInfo("Europe/Berlin")
DEVICE = DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74", model="UA-651BLE")
RECEIVED = datetime(2024, 6, 23, 12, 40, tzinfo=UTC)
CTX = ReadingContext(DEVICE, RECEIVED, ZONE, clock_skew=timedelta(seconds=42))

BPM_1 = "06 78 00 50 00 5D 00 E8 07 06 17 0E 23 0A 48 00"
BPM_2 = "19 A0 F0 6B F0 7D F0 02 06 00"
BPM_3 = "16 FF 07 FF 07 FF 07 E8 07 06 17 0E 23 0A FF 07 00 00"
BPM_4 = "1E 91 00 5F 00 70 00 00 00 00 00 00 00 00 83 00 FF 29 00"
BPM_5 = "04 76 00 4C 00 FF 07 D5 F2"


def d(text: str) -> Decimal:
    return Decimal(text)


def same(a: object, b: str) -> bool:
    """Equal including the exponent (resolution)."""
    return isinstance(a, Decimal) and a.as_tuple() == Decimal(b).as_tuple()


def test_bpm_1() -> None:
    m = decode_blood_pressure_measurement(bytes.fromhex(BPM_1))
    assert m == BloodPressureMeasurement(d("120"), d("80"), d("93"), Unit.MMHG, STAMP, d("72"))
    assert m.raw == bytes.fromhex(BPM_1)


def test_bpm_2_kpa_user_status() -> None:
    m = decode_blood_pressure_measurement(bytes.fromhex(BPM_2))
    assert m.unit is Unit.KPA
    assert same(m.systolic, "16.0") and same(m.diastolic, "10.7") and same(m.mean_arterial, "12.5")
    assert m.timestamp is None and m.pulse_rate is None
    assert m.user_id == 2
    assert m.status == BloodPressureStatus(0x0006)
    assert m.status.cuff_too_loose and m.status.irregular_pulse and not m.status.body_movement
    assert m.status.flags() == {StatusFlag.CUFF_TOO_LOOSE, StatusFlag.IRREGULAR_PULSE}


def test_bpm_3_error_frame_all_nan() -> None:
    m = decode_blood_pressure_measurement(bytes.fromhex(BPM_3))
    assert (m.systolic, m.diastolic, m.mean_arterial, m.pulse_rate) == (NAN, NAN, NAN, NAN)
    assert m.timestamp == STAMP and m.status == BloodPressureStatus(0) and m.status.flags() == frozenset()


def test_bpm_4_unknown_time_pulse_range_and_position() -> None:
    m = decode_blood_pressure_measurement(bytes.fromhex(BPM_4))
    assert (m.systolic, m.diastolic, m.mean_arterial, m.pulse_rate) == (145, 95, 112, 131)
    assert m.timestamp == DeviceTime.unknown() and m.timestamp.wall_time is None
    assert m.user_id == 255
    assert m.status is not None and m.status.bits == 0x0029
    assert m.status.pulse_range is PulseRange.ABOVE_UPPER_LIMIT
    assert m.status.flags() == {StatusFlag.BODY_MOVEMENT, StatusFlag.PULSE_ABOVE_RANGE, StatusFlag.IMPROPER_POSITION}


def test_bpm_5_nan_map_and_decimal_pulse() -> None:
    m = decode_blood_pressure_measurement(bytes.fromhex(BPM_5))
    assert (m.systolic, m.diastolic, m.mean_arterial) == (118, 76, NAN)
    assert same(m.pulse_rate, "72.5")


@pytest.mark.parametrize("wire", [BPM_1, BPM_2, BPM_3, BPM_4, BPM_5])
def test_vectors_re_encode_byte_for_byte(wire: str) -> None:
    assert encode_blood_pressure_measurement(decode_blood_pressure_measurement(bytes.fromhex(wire))) \
        == bytes.fromhex(wire)


@pytest.mark.parametrize(("bits", "expected"), [
    (0x0001, {StatusFlag.BODY_MOVEMENT}), (0x0002, {StatusFlag.CUFF_TOO_LOOSE}),
    (0x0004, {StatusFlag.IRREGULAR_PULSE}), (0x0008, {StatusFlag.PULSE_ABOVE_RANGE}),
    (0x0010, {StatusFlag.PULSE_BELOW_RANGE}), (0x0018, set()), (0x0020, {StatusFlag.IMPROPER_POSITION}),
    (0xFFC0, set()), (0xFFFF, {StatusFlag.BODY_MOVEMENT, StatusFlag.CUFF_TOO_LOOSE, StatusFlag.IRREGULAR_PULSE,
                               StatusFlag.IMPROPER_POSITION}),
])
def test_every_status_bit(bits: int, expected: set[StatusFlag]) -> None:
    assert BloodPressureStatus(bits).flags() == expected


def test_pulse_range_field_values() -> None:
    assert [BloodPressureStatus(v << 3).pulse_range for v in range(4)] == list(PulseRange)
    assert BloodPressureStatus.of(pulse_range=PulseRange.BELOW_LOWER_LIMIT, improper_position=True).bits == 0x0030
    assert BloodPressureStatus.of(body_movement=True, cuff_too_loose=True, irregular_pulse=True).bits == 0x0007


def layout(flags: int) -> list[tuple[str, int]]:
    """The field list (name, size) the spec demands for a flags byte; Date Time split into its sub-fields."""
    fields = [("flags", 1), ("systolic", 2), ("diastolic", 2), ("map", 2)]
    if flags & 0x02:
        fields += [("year", 2)] + [(n, 1) for n in ("month", "day", "hours", "minutes", "seconds")]
    if flags & 0x04:
        fields += [("pulse", 2)]
    if flags & 0x08:
        fields += [("user", 1)]
    if flags & 0x10:
        fields += [("status", 2)]
    return fields


def frame_for(flags: int) -> bytes:
    size = sum(s for _, s in layout(flags))
    return bytes([flags]) + bytes((0x10 + i) & 0x7F for i in range(size - 1))


@pytest.mark.parametrize("flags", range(256))
def test_every_flag_combination(flags: int) -> None:
    frame = frame_for(flags)
    assert len(frame) == 7 + 7 * bool(flags & 2) + 2 * bool(flags & 4) + bool(flags & 8) + 2 * bool(flags & 16)
    m = decode_blood_pressure_measurement(frame)
    assert m.unit is (Unit.KPA if flags & 1 else Unit.MMHG)
    assert (m.timestamp is not None) == bool(flags & 0x02)
    assert (m.pulse_rate is not None) == bool(flags & 0x04)
    assert (m.user_id is not None) == bool(flags & 0x08)
    assert (m.status is not None) == bool(flags & 0x10)
    assert m.surplus == b""
    # reserved bits (5-7) are ignored on decode and sent as 0
    assert encode_blood_pressure_measurement(m) == bytes([flags & 0x1F]) + frame[1:]
    icp = decode_intermediate_cuff_pressure(frame)
    assert icp.cuff_pressure == m.systolic and icp.status == m.status and icp.user_id == m.user_id


@pytest.mark.parametrize("flags", [0x00, 0x1F, 0x12, 0x0C])
def test_truncated_frames_name_the_offset_of_the_cut_field(flags: int) -> None:
    frame = frame_for(flags)
    starts = []
    at = 0
    for _, size in layout(flags):
        starts.append((at, size))
        at += size
    for length in range(len(frame)):
        expected = next(start for start, size in starts if start <= length < start + size)
        for decoder in (decode_blood_pressure_measurement, decode_intermediate_cuff_pressure):
            with pytest.raises(DecodeError) as info:
                decoder(frame[:length])
            assert info.value.offset == expected


def test_longer_frame_exposes_surplus() -> None:
    m = decode_blood_pressure_measurement(bytes.fromhex(BPM_5 + " AB CD"))
    assert m.surplus == bytes.fromhex("AB CD")
    assert same(m.pulse_rate, "72.5")


@pytest.mark.parametrize(("wire", "cuff", "unit", "pulse", "status"), [
    ("00 98 00 FF 07 FF 07", "152", Unit.MMHG, None, None),
    ("05 CB F0 FF 07 FF 07 40 00", "20.3", Unit.KPA, "64", None),
    ("10 57 00 FF 07 FF 07 01 00", "87", Unit.MMHG, None, 0x0001),
])
def test_intermediate_cuff_pressure_vectors(wire: str, cuff: str, unit: Unit, pulse: str | None,
                                            status: int | None) -> None:
    icp = decode_intermediate_cuff_pressure(bytes.fromhex(wire))
    assert same(icp.cuff_pressure, cuff) and icp.unit is unit
    assert (icp.pulse_rate is None) if pulse is None else same(icp.pulse_rate, pulse)
    assert (icp.status is None) if status is None else icp.status == BloodPressureStatus(status)
    assert encode_intermediate_cuff_pressure(icp) == bytes.fromhex(wire)   # emulator sends NaN in unused slots
    assert IntermediateCuffPressureCodec().readings(icp, CTX) == []


def test_intermediate_cuff_ignores_the_unused_slots() -> None:
    assert decode_intermediate_cuff_pressure(bytes.fromhex("00 98 00 50 00 5D 00")) == \
        IntermediateCuffPressure(d("152"))


def test_encoder_rejects_wrong_unit_and_big_user() -> None:
    with pytest.raises(ValueError):
        encode_blood_pressure_measurement(BloodPressureMeasurement(d("1"), d("1"), d("1"), Unit.CELSIUS))
    with pytest.raises(ValueError):
        encode_blood_pressure_measurement(BloodPressureMeasurement(d("1"), d("1"), d("1"), user_id=256))


def test_feature() -> None:
    feature = decode_blood_pressure_feature(bytes.fromhex("3F 00"))
    assert feature.supported == (BloodPressureFeatureBits.BODY_MOVEMENT_DETECTION
                                 | BloodPressureFeatureBits.CUFF_FIT_DETECTION
                                 | BloodPressureFeatureBits.IRREGULAR_PULSE_DETECTION
                                 | BloodPressureFeatureBits.PULSE_RATE_RANGE_DETECTION
                                 | BloodPressureFeatureBits.MEASUREMENT_POSITION_DETECTION
                                 | BloodPressureFeatureBits.MULTIPLE_BONDS)
    assert BloodPressureFeatureBits.USER_FACING_TIME in decode_blood_pressure_feature(b"\x00\x01").supported
    assert encode_blood_pressure_feature(feature) == bytes.fromhex("3F 00")
    assert decode_blood_pressure_feature(bytes.fromhex("00 80 FF")) == BloodPressureFeature(
        BloodPressureFeatureBits(0x8000), b"\xff")
    with pytest.raises(DecodeError) as info:
        decode_blood_pressure_feature(b"\x3f")
    assert info.value.offset == 0


# --- readings ---------------------------------------------------------------------------------------------

def one_reading(wire: str, ctx: ReadingContext = CTX) -> Reading:
    codec = BloodPressureMeasurementCodec()
    readings = codec.readings(codec.decode(bytes.fromhex(wire)), ctx)
    assert len(readings) == 1
    return readings[0]


def test_bpm_1_reading_uses_device_time_in_site_zone() -> None:
    r = one_reading(BPM_1)
    assert r.kind is ReadingKind.BLOOD_PRESSURE
    assert r.values[Metric.SYSTOLIC].value == 120 and r.values[Metric.SYSTOLIC].unit is Unit.MMHG
    assert r.values[Metric.DIASTOLIC].value == 80 and r.values[Metric.MEAN_ARTERIAL].value == 93
    assert r.values[Metric.PULSE_RATE].value == 72 and r.values[Metric.PULSE_RATE].unit is Unit.PER_MINUTE
    assert r.time_source is TimeSource.DEVICE
    assert r.measured_at == datetime(2024, 6, 23, 14, 35, 10, tzinfo=ZONE)
    assert r.measured_at is not None and r.measured_at.utcoffset() == timedelta(hours=2)
    assert r.clock_skew == timedelta(seconds=42)
    assert r.raw == bytes.fromhex(BPM_1) and r.device == DEVICE and r.received_at == RECEIVED
    assert r.status == frozenset() and r.patient_hint is None


def test_bpm_2_reading_keeps_kpa_and_user_hint() -> None:
    r = one_reading(BPM_2)
    assert r.values[Metric.SYSTOLIC].unit is Unit.KPA and str(r.values[Metric.SYSTOLIC].value) == "16.0"
    assert Metric.PULSE_RATE not in r.values
    assert r.time_source is TimeSource.RECEIPT and r.measured_at == RECEIVED
    assert r.patient_hint == "2"
    assert r.status == {StatusFlag.CUFF_TOO_LOOSE, StatusFlag.IRREGULAR_PULSE}


def test_bpm_3_reading_values_are_absent_not_numbers() -> None:
    r = one_reading(BPM_3)
    for metric in (Metric.SYSTOLIC, Metric.DIASTOLIC, Metric.MEAN_ARTERIAL, Metric.PULSE_RATE):
        assert r.values[metric].value is None and r.values[metric].absent is AbsentReason.NOT_A_NUMBER


def test_bpm_4_reading_unknown_time_and_unknown_user() -> None:
    ctx = ReadingContext(DEVICE, RECEIVED, ZONE, patient_hint="checked-in-7")
    r = one_reading(BPM_4, ctx)
    assert r.time_source is TimeSource.UNKNOWN and r.measured_at is None
    assert r.patient_hint == "checked-in-7"   # user 255 = unknown: fall back to the context
    assert StatusFlag.PULSE_ABOVE_RANGE in r.status


def test_reading_raw_is_re_encoded_for_constructed_values() -> None:
    value = BloodPressureMeasurement(d("120"), d("80"), d("93"))
    r = BloodPressureMeasurementCodec().readings(value, CTX)[0]
    assert r.raw == bytes.fromhex("00 78 00 50 00 5D 00")


def test_codec_names() -> None:
    assert BloodPressureMeasurementCodec.name == "bls.measurement"
    assert IntermediateCuffPressureCodec.name == "bls.intermediate-cuff"
