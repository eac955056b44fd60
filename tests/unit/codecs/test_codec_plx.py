"""PLX Spot-check / Continuous / Features: reference vectors, every flag combination, status bits, Readings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.gatt_time import DeviceTime
from healthhut.drivers.codecs.pulse_oximetry import (
    ContinuousCodec,
    ContinuousMeasurement,
    PlxFeatures,
    PlxMeasurementStatus,
    PlxSupportedFeatures,
    SpO2PulseRate,
    SpotCheckCodec,
    SpotCheckMeasurement,
    decode_continuous,
    decode_plx_features,
    decode_spot_check,
    device_sensor_status_flags,
    encode_continuous,
    encode_plx_features,
    encode_spot_check,
    measurement_status_flags,
)
from healthhut.errors import DecodeError
from healthhut.readings import (
    AbsentReason,
    DeviceIdentity,
    Metric,
    ReadingKind,
    StatusFlag,
    TimeSource,
    Transport,
    Unit,
)

NAN = AbsentReason.NOT_A_NUMBER
ZONE = ZoneInfo("Africa/Nairobi")
DEVICE = DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74", model="3230")
RECEIVED = datetime(2024, 6, 24, 1, 0, 5, tzinfo=UTC)
CTX = ReadingContext(DEVICE, RECEIVED, ZONE)

SPOT_1 = "00 61 00 48 00"
SPOT_2 = "0B 5F 00 40 00 E8 07 06 17 0E 23 0A 80 02 15 F0"
SPOT_3 = "14 FF 07 FF 07 20 00 00"
SPOT_4 = "03 59 00 65 00 E8 07 06 18 03 0C 00 80 02"
CONT_1 = "00 60 00 3A 00"
CONT_2 = "03 60 00 3A 00 5F 00 3C 00 60 00 39 00"
CONT_3 = "1C FF 07 FF 07 20 00 00 02 00 FF 07"


def test_spot_1() -> None:
    assert decode_spot_check(bytes.fromhex(SPOT_1)) == SpotCheckMeasurement(Decimal(97), Decimal(72))


def test_spot_2() -> None:
    m = decode_spot_check(bytes.fromhex(SPOT_2))
    assert (m.spo2, m.pulse_rate) == (95, 64)
    assert m.timestamp == DeviceTime(2024, 6, 23, 14, 35, 10)
    assert m.measurement_status == PlxMeasurementStatus.VALIDATED_DATA | PlxMeasurementStatus.DATA_FROM_STORAGE
    assert m.device_sensor_status is None and not m.clock_not_set
    assert isinstance(m.pulse_amplitude_index, Decimal) and str(m.pulse_amplitude_index) == "2.1"


def test_spot_3_clock_not_set_and_low_perfusion() -> None:
    m = decode_spot_check(bytes.fromhex(SPOT_3))
    assert (m.spo2, m.pulse_rate) == (NAN, NAN)
    assert m.clock_not_set and m.timestamp is None and m.measurement_status is None
    assert m.device_sensor_status == 0x000020
    assert device_sensor_status_flags(0x20) == {StatusFlag.LOW_PERFUSION}


def test_spot_4_stored_night_record() -> None:
    m = decode_spot_check(bytes.fromhex(SPOT_4))
    assert (m.spo2, m.pulse_rate) == (89, 101)
    assert m.timestamp is not None and m.timestamp.wall_time == datetime(2024, 6, 24, 3, 12, 0)
    assert m.measurement_status is not None and int(m.measurement_status) == 0x0280


def test_cont_vectors() -> None:
    assert decode_continuous(bytes.fromhex(CONT_1)) == ContinuousMeasurement(SpO2PulseRate(Decimal(96), Decimal(58)))
    two = decode_continuous(bytes.fromhex(CONT_2))
    assert two.fast == SpO2PulseRate(Decimal(95), Decimal(60)) and two.slow == SpO2PulseRate(Decimal(96), Decimal(57))
    three = decode_continuous(bytes.fromhex(CONT_3))
    assert three.normal == SpO2PulseRate(NAN, NAN) and three.fast is None and three.slow is None
    assert three.measurement_status == PlxMeasurementStatus.MEASUREMENT_ONGOING
    assert three.device_sensor_status == 0x000200 and three.pulse_amplitude_index is NAN


@pytest.mark.parametrize("wire", [SPOT_1, SPOT_2, SPOT_3, SPOT_4])
def test_spot_vectors_re_encode(wire: str) -> None:
    assert encode_spot_check(decode_spot_check(bytes.fromhex(wire))) == bytes.fromhex(wire)


@pytest.mark.parametrize("wire", [CONT_1, CONT_2, CONT_3])
def test_cont_vectors_re_encode(wire: str) -> None:
    assert encode_continuous(decode_continuous(bytes.fromhex(wire))) == bytes.fromhex(wire)


def test_every_measurement_status_bit() -> None:
    expected = [StatusFlag.MEASUREMENT_ONGOING, StatusFlag.EARLY_ESTIMATE, StatusFlag.VALIDATED,
                StatusFlag.FULLY_QUALIFIED, StatusFlag.FROM_STORAGE, StatusFlag.DEMONSTRATION_DATA,
                StatusFlag.TESTING_DATA, StatusFlag.CALIBRATION_ONGOING, StatusFlag.MEASUREMENT_UNAVAILABLE,
                StatusFlag.QUESTIONABLE, StatusFlag.INVALID]
    for bit in range(5):
        assert measurement_status_flags(1 << bit) == frozenset()   # reserved
    for bit, flag in zip(range(5, 16), expected, strict=True):
        assert measurement_status_flags(1 << bit) == {flag}


def test_every_device_sensor_status_bit() -> None:
    expected = [StatusFlag.EXTENDED_DISPLAY_UPDATE, StatusFlag.EQUIPMENT_MALFUNCTION,
                StatusFlag.SIGNAL_PROCESSING_IRREGULARITY, StatusFlag.INADEQUATE_SIGNAL, StatusFlag.POOR_SIGNAL,
                StatusFlag.LOW_PERFUSION, StatusFlag.ERRATIC_SIGNAL, StatusFlag.NON_PULSATILE_SIGNAL,
                StatusFlag.QUESTIONABLE_PULSE, StatusFlag.SIGNAL_ANALYSIS_ONGOING, StatusFlag.SENSOR_INTERFERENCE,
                StatusFlag.SENSOR_UNCONNECTED, StatusFlag.UNKNOWN_SENSOR, StatusFlag.SENSOR_DISPLACED,
                StatusFlag.SENSOR_MALFUNCTIONING, StatusFlag.SENSOR_DISCONNECTED]
    for bit, flag in enumerate(expected):
        assert device_sensor_status_flags(1 << bit) == {flag}
    assert device_sensor_status_flags(0xFF0000) == frozenset()
    assert len(device_sensor_status_flags(0xFFFFFF)) == 16


def spot_layout(flags: int) -> list[int]:
    sizes = [1, 2, 2]
    if flags & 0x01:
        sizes += [2, 1, 1, 1, 1, 1]
    if flags & 0x02:
        sizes += [2]
    if flags & 0x04:
        sizes += [3]
    if flags & 0x08:
        sizes += [2]
    return sizes


def cont_layout(flags: int) -> list[int]:
    sizes = [1, 2, 2]
    if flags & 0x01:
        sizes += [2, 2]
    if flags & 0x02:
        sizes += [2, 2]
    if flags & 0x04:
        sizes += [2]
    if flags & 0x08:
        sizes += [3]
    if flags & 0x10:
        sizes += [2]
    return sizes


def fill(flags: int, sizes: list[int]) -> bytes:
    return bytes([flags]) + bytes((0x21 + 3 * i) & 0x7F for i in range(sum(sizes) - 1))


def cut_offsets(sizes: list[int]) -> list[int]:
    """For every shorter length, the start of the field the cut falls into."""
    out = []
    start = 0
    for size in sizes:
        out += [start] * size
        start += size
    return out


@pytest.mark.parametrize("flags", range(256))
def test_spot_every_flag_combination(flags: int) -> None:
    sizes = spot_layout(flags)
    frame = fill(flags, sizes)
    assert 5 <= len(frame) <= 19
    m = decode_spot_check(frame)
    assert (m.timestamp is not None) == bool(flags & 0x01)
    assert (m.measurement_status is not None) == bool(flags & 0x02)
    assert (m.device_sensor_status is not None) == bool(flags & 0x04)
    assert (m.pulse_amplitude_index is not None) == bool(flags & 0x08)
    assert m.clock_not_set == bool(flags & 0x10)
    assert m.surplus == b""
    assert encode_spot_check(m) == bytes([flags & 0x1F]) + frame[1:]
    for length, offset in enumerate(cut_offsets(sizes)):
        with pytest.raises(DecodeError) as info:
            decode_spot_check(frame[:length])
        assert info.value.offset == offset


@pytest.mark.parametrize("flags", range(256))
def test_continuous_every_flag_combination(flags: int) -> None:
    sizes = cont_layout(flags)
    frame = fill(flags, sizes)
    assert 5 <= len(frame) <= 20
    m = decode_continuous(frame)
    assert (m.fast is not None) == bool(flags & 0x01)
    assert (m.slow is not None) == bool(flags & 0x02)
    assert (m.measurement_status is not None) == bool(flags & 0x04)
    assert (m.device_sensor_status is not None) == bool(flags & 0x08)
    assert (m.pulse_amplitude_index is not None) == bool(flags & 0x10)
    assert encode_continuous(m) == bytes([flags & 0x1F]) + frame[1:]
    for length, offset in enumerate(cut_offsets(sizes)):
        with pytest.raises(DecodeError) as info:
            decode_continuous(frame[:length])
        assert info.value.offset == offset


def test_surplus_is_kept() -> None:
    assert decode_spot_check(bytes.fromhex(SPOT_1 + "01 02")).surplus == b"\x01\x02"
    assert decode_continuous(bytes.fromhex(CONT_1 + "09")).surplus == b"\x09"


@pytest.mark.parametrize(("wire", "status", "sensor"), [
    ("00 00", None, None), ("01 00 E0 FF", 0xFFE0, None), ("02 00 FF FF 00", None, 0x00FFFF),
    ("FF 00 20 00 01 02 00", 0x0020, 0x000201),
])
def test_plx_features_variable_length(wire: str, status: int | None, sensor: int | None) -> None:
    features = decode_plx_features(bytes.fromhex(wire))
    assert (features.measurement_status_support is None) == (status is None)
    if status is not None:
        assert int(features.measurement_status_support or 0) == status
    assert features.device_sensor_status_support == sensor
    assert encode_plx_features(features) == bytes.fromhex(wire)


def test_plx_features_storage_bit_and_truncation() -> None:
    assert PlxSupportedFeatures.SPOT_CHECK_STORAGE in decode_plx_features(b"\x04\x00").supported
    with pytest.raises(DecodeError) as info:
        decode_plx_features(bytes.fromhex("03 00 20 00 01 02"))
    assert info.value.offset == 4
    with pytest.raises(ValueError):
        encode_plx_features(PlxFeatures(PlxSupportedFeatures.MEASUREMENT_STATUS))


# --- readings ---------------------------------------------------------------------------------------------

def test_spot_2_reading() -> None:
    codec = SpotCheckCodec()
    [r] = codec.readings(codec.decode(bytes.fromhex(SPOT_2)), CTX)
    assert r.kind is ReadingKind.SPO2
    assert r.values[Metric.SPO2].value == 95 and r.values[Metric.SPO2].unit is Unit.PERCENT
    assert r.values[Metric.PULSE_RATE].value == 64 and r.values[Metric.PULSE_RATE].unit is Unit.PER_MINUTE
    assert str(r.values[Metric.PULSE_AMPLITUDE_INDEX].value) == "2.1"
    assert r.values[Metric.PULSE_AMPLITUDE_INDEX].unit is Unit.PERCENT
    assert r.time_source is TimeSource.DEVICE and r.measured_at == datetime(2024, 6, 23, 14, 35, 10, tzinfo=ZONE)
    assert r.status == {StatusFlag.VALIDATED, StatusFlag.FROM_STORAGE}
    assert r.raw == bytes.fromhex(SPOT_2)


def test_spot_1_reading_without_timestamp_uses_receipt() -> None:
    codec = SpotCheckCodec()
    [r] = codec.readings(codec.decode(bytes.fromhex(SPOT_1)), CTX)
    assert r.time_source is TimeSource.RECEIPT and r.measured_at == RECEIVED
    assert Metric.PULSE_AMPLITUDE_INDEX not in r.values


def test_spot_clock_not_set_makes_the_time_unknown() -> None:
    codec = SpotCheckCodec()
    frame = bytes.fromhex("11 61 00 48 00 E8 07 06 17 0E 23 0A")
    [r] = codec.readings(codec.decode(frame), CTX)
    assert r.time_source is TimeSource.UNKNOWN and r.measured_at is None
    assert StatusFlag.CLOCK_NOT_SET in r.status
    [r3] = codec.readings(codec.decode(bytes.fromhex(SPOT_3)), CTX)
    assert r3.status == {StatusFlag.CLOCK_NOT_SET, StatusFlag.LOW_PERFUSION}
    assert r3.values[Metric.SPO2].absent is AbsentReason.NOT_A_NUMBER


def test_continuous_reading_is_one_per_frame_at_receipt() -> None:
    codec = ContinuousCodec()
    [r] = codec.readings(codec.decode(bytes.fromhex(CONT_2)), CTX)
    assert r.kind is ReadingKind.SPO2 and r.time_source is TimeSource.RECEIPT and r.measured_at == RECEIVED
    assert r.values[Metric.SPO2].value == 96 and r.values[Metric.PULSE_RATE].value == 58
    [r3] = codec.readings(codec.decode(bytes.fromhex(CONT_3)), CTX)
    assert r3.status == {StatusFlag.MEASUREMENT_ONGOING, StatusFlag.SIGNAL_ANALYSIS_ONGOING}
    assert r3.values[Metric.PULSE_AMPLITUDE_INDEX].absent is AbsentReason.NOT_A_NUMBER
