"""Temperature Measurement and Weight Measurement/Feature: reference vectors, flags, special values, Readings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.gatt_time import DeviceTime
from healthhut.drivers.codecs.thermometer import (
    TemperatureMeasurement,
    TemperatureMeasurementCodec,
    TemperatureType,
    body_site,
    decode_temperature_measurement,
    decode_temperature_type,
    encode_temperature_measurement,
)
from healthhut.drivers.codecs.weight_scale import (
    HEIGHT_RESOLUTIONS,
    WEIGHT_RESOLUTIONS,
    WeightMeasurement,
    WeightMeasurementCodec,
    decode_weight_measurement,
    decode_weight_scale_feature,
    encode_weight_measurement,
    encode_weight_scale_feature,
)
from healthhut.errors import DecodeError
from healthhut.readings import AbsentReason, DeviceIdentity, Metric, ReadingKind, TimeSource, Transport, Unit

STAMP = DeviceTime(2024, 6, 23, 14, 35, 10)
ZONE = ZoneInfo("America/New_York")
RECEIVED = datetime(2024, 6, 23, 18, 40, tzinfo=UTC)
CTX = ReadingContext(DeviceIdentity(Transport.BLE, address="AA:BB:CC:DD:EE:FF"), RECEIVED, ZONE)

TEMP_1 = "00 70 01 00 FF"
TEMP_2 = "07 DA 03 00 FF E8 07 06 17 0E 23 0A 03"
TEMP_3 = "04 00 00 80 00 01"
WS_1 = "00 90 38"
WS_2 = "0F 58 3E E8 07 06 17 0E 23 0A 01 E8 00 B7 02"
WS_3 = "00 FF FF"
WS_4 = "08 90 38 E5 00 F4 06"


def exact(value: object, text: str) -> bool:
    return isinstance(value, Decimal) and value.as_tuple() == Decimal(text).as_tuple()


def test_temp_vectors() -> None:
    one = decode_temperature_measurement(bytes.fromhex(TEMP_1))
    assert exact(one.temperature, "36.8") and one.unit is Unit.CELSIUS and one.timestamp is None
    two = decode_temperature_measurement(bytes.fromhex(TEMP_2))
    assert exact(two.temperature, "98.6") and two.unit is Unit.FAHRENHEIT
    assert two.timestamp == STAMP and two.temperature_type == TemperatureType.EAR and two.body_site == "ear"
    three = decode_temperature_measurement(bytes.fromhex(TEMP_3))
    assert three.temperature is AbsentReason.NOT_REPRESENTABLE and three.unit is Unit.CELSIUS
    assert three.body_site == "armpit"


@pytest.mark.parametrize("wire", [TEMP_1, TEMP_2, TEMP_3])
def test_temp_vectors_re_encode(wire: str) -> None:
    assert encode_temperature_measurement(decode_temperature_measurement(bytes.fromhex(wire))) \
        == bytes.fromhex(wire)


def test_body_sites() -> None:
    assert [body_site(code) for code in range(11)] == [
        None, "armpit", "body", "ear", "finger", "gastrointestinal-tract", "mouth", "rectum", "toe", "tympanum",
        None]
    assert body_site(255) is None and body_site(None) is None
    assert decode_temperature_type(b"\x09") == 9


def temp_layout(flags: int) -> list[int]:
    return [1, 4] + ([2, 1, 1, 1, 1, 1] if flags & 2 else []) + ([1] if flags & 4 else [])


def weight_layout(flags: int) -> list[int]:
    return ([1, 2] + ([2, 1, 1, 1, 1, 1] if flags & 2 else []) + ([1] if flags & 4 else [])
            + ([2, 2] if flags & 8 else []))


def offsets(sizes: list[int]) -> list[int]:
    out, start = [], 0
    for size in sizes:
        out += [start] * size
        start += size
    return out


@pytest.mark.parametrize("flags", range(256))
def test_temperature_every_flag_combination(flags: int) -> None:
    sizes = temp_layout(flags)
    frame = bytes([flags]) + bytes(range(1, sum(sizes)))
    m = decode_temperature_measurement(frame)
    assert m.unit is (Unit.FAHRENHEIT if flags & 1 else Unit.CELSIUS)
    assert (m.timestamp is not None) == bool(flags & 2)
    assert (m.temperature_type is not None) == bool(flags & 4)
    assert encode_temperature_measurement(m) == bytes([flags & 0x07]) + frame[1:]
    for length, offset in enumerate(offsets(sizes)):
        with pytest.raises(DecodeError) as info:
            decode_temperature_measurement(frame[:length])
        assert info.value.offset == offset


@pytest.mark.parametrize("flags", range(256))
def test_weight_every_flag_combination(flags: int) -> None:
    sizes = weight_layout(flags)
    frame = bytes([flags]) + bytes(range(1, sum(sizes)))
    m = decode_weight_measurement(frame)
    assert m.imperial == bool(flags & 1)
    assert (m.timestamp is not None) == bool(flags & 2)
    assert (m.user_id is not None) == bool(flags & 4)
    assert (m.bmi is not None) == (m.height is not None) == bool(flags & 8)
    assert encode_weight_measurement(m) == bytes([flags & 0x0F]) + frame[1:]
    for length, offset in enumerate(offsets(sizes)):
        with pytest.raises(DecodeError) as info:
            decode_weight_measurement(frame[:length])
        assert info.value.offset == offset


def test_ws_1_exact_decimal_scaling() -> None:
    m = decode_weight_measurement(bytes.fromhex(WS_1))
    assert exact(m.weight, "72.400") and m.weight_unit is Unit.KILOGRAM


def test_ws_2_imperial() -> None:
    m = decode_weight_measurement(bytes.fromhex(WS_2))
    assert m.imperial and exact(m.weight, "159.60") and m.weight_unit is Unit.POUND
    assert m.timestamp == STAMP and m.user_id == 1
    assert exact(m.bmi, "23.2") and exact(m.height, "69.5") and m.height_unit is Unit.INCH


def test_ws_3_unsuccessful_is_not_a_weight() -> None:
    assert decode_weight_measurement(bytes.fromhex(WS_3)).weight is AbsentReason.MEASUREMENT_FAILED
    assert decode_weight_measurement(bytes.fromhex("01 FF FF")).weight is AbsentReason.MEASUREMENT_FAILED


def test_ws_4_bmi_and_height() -> None:
    m = decode_weight_measurement(bytes.fromhex(WS_4))
    assert exact(m.weight, "72.400") and exact(m.bmi, "22.9") and exact(m.height, "1.780")
    assert m.height_unit is Unit.METRE


@pytest.mark.parametrize("wire", [WS_1, WS_2, WS_3, WS_4])
def test_weight_vectors_re_encode(wire: str) -> None:
    assert encode_weight_measurement(decode_weight_measurement(bytes.fromhex(wire))) == bytes.fromhex(wire)


def test_weight_encoder_rejects_off_grid_and_half_pairs() -> None:
    assert encode_weight_measurement(WeightMeasurement(Decimal("72.4"))) == bytes.fromhex(WS_1)
    with pytest.raises(ValueError):
        encode_weight_measurement(WeightMeasurement(Decimal("72.401")))
    with pytest.raises(ValueError):
        encode_weight_measurement(WeightMeasurement(Decimal("327.675")))   # 0xFFFF is reserved for failure
    with pytest.raises(ValueError):
        encode_weight_measurement(WeightMeasurement(Decimal("70"), bmi=Decimal("22.0")))
    with pytest.raises(ValueError):
        encode_weight_measurement(WeightMeasurement(AbsentReason.NOT_A_NUMBER))


def test_weight_surplus() -> None:
    assert decode_weight_measurement(bytes.fromhex(WS_1 + "00")).surplus == b"\x00"


def test_weight_scale_feature() -> None:
    # time stamp + multiple users + BMI, weight resolution 7 (0.005 kg), height resolution 3 (0.001 m)
    bits = 0x1 | 0x2 | 0x4 | (7 << 3) | (3 << 7)
    feature = decode_weight_scale_feature(bits.to_bytes(4, "little"))
    assert feature.time_stamp_supported and feature.multiple_users_supported and feature.bmi_supported
    assert feature.weight_resolution == 7 and WEIGHT_RESOLUTIONS[7] == (Decimal("0.005"), Decimal("0.01"))
    assert feature.height_resolution == 3 and HEIGHT_RESOLUTIONS[3] == (Decimal("0.001"), Decimal("0.1"))
    assert encode_weight_scale_feature(feature) == bits.to_bytes(4, "little")
    with pytest.raises(DecodeError) as info:
        decode_weight_scale_feature(b"\x01\x00\x00")
    assert info.value.offset == 0


# --- readings ---------------------------------------------------------------------------------------------

def test_temperature_readings() -> None:
    codec = TemperatureMeasurementCodec()
    [r] = codec.readings(codec.decode(bytes.fromhex(TEMP_2)), CTX)
    assert r.kind is ReadingKind.BODY_TEMPERATURE
    q = r.values[Metric.BODY_TEMPERATURE]
    assert q.unit is Unit.FAHRENHEIT and str(q.value) == "98.6"
    assert r.body_site == "ear" and r.time_source is TimeSource.DEVICE
    assert r.measured_at == datetime(2024, 6, 23, 14, 35, 10, tzinfo=ZONE)
    assert r.raw == bytes.fromhex(TEMP_2)
    [nres] = codec.readings(codec.decode(bytes.fromhex(TEMP_3)), CTX)
    assert nres.values[Metric.BODY_TEMPERATURE].absent is AbsentReason.NOT_REPRESENTABLE
    assert nres.values[Metric.BODY_TEMPERATURE].unit is Unit.CELSIUS
    assert nres.time_source is TimeSource.RECEIPT and nres.body_site == "armpit"


def test_temperature_reading_from_constructed_value() -> None:
    [r] = TemperatureMeasurementCodec().readings(TemperatureMeasurement(Decimal("36.8")), CTX)
    assert r.raw == bytes.fromhex(TEMP_1) and r.body_site is None


def test_weight_readings() -> None:
    codec = WeightMeasurementCodec()
    [r] = codec.readings(codec.decode(bytes.fromhex(WS_2)), CTX)
    assert r.kind is ReadingKind.BODY_WEIGHT
    assert r.values[Metric.BODY_WEIGHT].unit is Unit.POUND and str(r.values[Metric.BODY_WEIGHT].value) == "159.60"
    assert r.values[Metric.BODY_HEIGHT].unit is Unit.INCH and str(r.values[Metric.BODY_HEIGHT].value) == "69.5"
    assert r.values[Metric.BMI].unit is Unit.KG_PER_M2 and str(r.values[Metric.BMI].value) == "23.2"
    assert r.patient_hint == "1" and r.time_source is TimeSource.DEVICE
    [failed] = codec.readings(codec.decode(bytes.fromhex(WS_3)), CTX)
    assert failed.values[Metric.BODY_WEIGHT].absent is AbsentReason.MEASUREMENT_FAILED
    assert failed.values[Metric.BODY_WEIGHT].unit is Unit.KILOGRAM
    assert set(failed.values) == {Metric.BODY_WEIGHT}
    [si] = codec.readings(codec.decode(bytes.fromhex(WS_4)), CTX)
    assert str(si.values[Metric.BODY_WEIGHT].value) == "72.400" and si.values[Metric.BODY_HEIGHT].unit is Unit.METRE
    assert si.time_source is TimeSource.RECEIPT and si.measured_at == RECEIVED
