"""Hypothesis: encode -> decode is the identity for every characteristic (resolution included), and no byte
string of any length makes a decoder or a codec's readings() raise anything but DecodeError."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthhut.drivers.codecs import (
    blood_pressure,
    current_time,
    device_info,
    gatt_time,
    pulse_oximetry,
    racp,
    thermometer,
    weight_scale,
)
from healthhut.drivers.codecs.base import ReadingContext, describe
from healthhut.drivers.codecs.registry import get_codec
from healthhut.errors import DecodeError
from healthhut.readings import AbsentReason, DeviceIdentity, Reading, Transport, Unit

SPECIALS = [AbsentReason.NOT_A_NUMBER, AbsentReason.NOT_REPRESENTABLE, AbsentReason.POSITIVE_INFINITY,
            AbsentReason.NEGATIVE_INFINITY, AbsentReason.RESERVED]
sfloats = st.one_of(st.sampled_from(SPECIALS),
                    st.builds(lambda m, e: Decimal(f"{m}E{e}"), st.integers(-2045, 2045), st.integers(-8, 7)))
floats32 = st.one_of(st.sampled_from(SPECIALS),
                     st.builds(lambda m, e: Decimal(f"{m}E{e}"), st.integers(-8388605, 8388605),
                               st.integers(-128, 127)))
date_times = st.builds(gatt_time.DeviceTime, st.integers(0, 0xFFFF), *(st.integers(0, 255) for _ in range(5)))
u8, u16, u24 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFF)


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def same(decoded: Any, original: Any) -> bool:
    """Field-by-field equality with Decimals compared as text, so 2.00 != 2.0 (resolution must survive)."""
    if hasattr(decoded, "raw"):   # the decoded copy remembers its frame; the constructed one does not
        decoded = dataclasses.replace(decoded, raw=b"")
        original = dataclasses.replace(original, raw=b"")
    result: bool = describe(decoded) == describe(original)
    return result


bp_status = st.builds(blood_pressure.BloodPressureStatus, u16)
bp_measurements = st.builds(blood_pressure.BloodPressureMeasurement, sfloats, sfloats, sfloats,
                            st.sampled_from([Unit.MMHG, Unit.KPA]), opt(date_times), opt(sfloats), opt(u8),
                            opt(bp_status))
cuff_pressures = st.builds(blood_pressure.IntermediateCuffPressure, sfloats, st.sampled_from([Unit.MMHG, Unit.KPA]),
                           opt(date_times), opt(sfloats), opt(u8), opt(bp_status))
plx_status = st.builds(pulse_oximetry.PlxMeasurementStatus, u16)
spot_checks = st.builds(pulse_oximetry.SpotCheckMeasurement, sfloats, sfloats, opt(date_times), opt(plx_status),
                        opt(u24), opt(sfloats), st.booleans())
pairs = st.builds(pulse_oximetry.SpO2PulseRate, sfloats, sfloats)
continuous = st.builds(pulse_oximetry.ContinuousMeasurement, pairs, opt(pairs), opt(pairs), opt(plx_status),
                       opt(u24), opt(sfloats))


@st.composite
def plx_features(draw: st.DrawFn) -> pulse_oximetry.PlxFeatures:
    bits = draw(u16)
    status = draw(plx_status) if bits & 1 else None
    sensor = draw(u24) if bits & 2 else None
    return pulse_oximetry.PlxFeatures(pulse_oximetry.PlxSupportedFeatures(bits), status, sensor)


temperatures = st.builds(thermometer.TemperatureMeasurement, floats32, st.sampled_from([Unit.CELSIUS,
                                                                                       Unit.FAHRENHEIT]),
                         opt(date_times), opt(u8))


@st.composite
def weights(draw: st.DrawFn) -> weight_scale.WeightMeasurement:
    imperial = draw(st.booleans())
    steps = draw(st.integers(0, 0xFFFF))
    weight: Decimal | AbsentReason = (AbsentReason.MEASUREMENT_FAILED if steps == 0xFFFF
                                      else steps * (Decimal("0.01") if imperial else Decimal("0.005")))
    bmi = height = None
    if draw(st.booleans()):
        bmi = draw(u16) * Decimal("0.1")
        height = draw(u16) * (Decimal("0.1") if imperial else Decimal("0.001"))
    return weight_scale.WeightMeasurement(weight, imperial, draw(opt(date_times)), draw(opt(u8)), bmi, height)


racp_messages = st.one_of(
    st.builds(racp.RacpNumberOfRecords, u16),
    st.builds(racp.RacpResponseCode, u8, u8),
    st.builds(racp.RacpLatestSequence, u16),
    st.builds(racp.RacpRequest, st.sampled_from(list(racp.RacpOpCode)),
              st.sampled_from([racp.RacpOperator.NULL, racp.RacpOperator.ALL_RECORDS,
                               racp.RacpOperator.FIRST_RECORD, racp.RacpOperator.LAST_RECORD])).filter(
        lambda r: r.op_code not in (racp.RacpOpCode.NUMBER_OF_RECORDS_RESPONSE, racp.RacpOpCode.RESPONSE_CODE,
                                    racp.RacpOpCode.OMRON_LATEST_SEQUENCE_RESPONSE)),
    st.builds(lambda op, seq, ft: racp.RacpRequest(op, racp.RacpOperator.GREATER_OR_EQUAL, ft, (seq,)),
              st.sampled_from([racp.RacpOpCode.REPORT_STORED_RECORDS, racp.RacpOpCode.DELETE_STORED_RECORDS,
                               racp.RacpOpCode.REPORT_NUMBER_OF_RECORDS]), u16, st.sampled_from([1, 4])),
    st.builds(lambda a, b: racp.RacpRequest(racp.RacpOpCode.REPORT_STORED_RECORDS, racp.RacpOperator.WITHIN_RANGE,
                                            1, (a, b)), u16, u16),
    st.builds(lambda ft, operand: racp.RacpRequest(racp.RacpOpCode.DELETE_STORED_RECORDS,
                                                   racp.RacpOperator.LESS_OR_EQUAL, ft, operand=operand),
              st.sampled_from([0, 2, 3, 5, 0xFF]), st.binary(max_size=9)),
)
current_times = st.builds(current_time.CurrentTime,
                          st.builds(gatt_time.ExactTime256, date_times, u8, u8),
                          st.builds(current_time.AdjustReason, u8))

ROUND_TRIPS: list[tuple[str, st.SearchStrategy[Any], Callable[[Any], bytes], Callable[[bytes], Any]]] = [
    ("bp measurement", bp_measurements, blood_pressure.encode_blood_pressure_measurement,
     blood_pressure.decode_blood_pressure_measurement),
    ("cuff pressure", cuff_pressures, blood_pressure.encode_intermediate_cuff_pressure,
     blood_pressure.decode_intermediate_cuff_pressure),
    ("bp feature", st.builds(blood_pressure.BloodPressureFeature,
                             st.builds(blood_pressure.BloodPressureFeatureBits, u16)),
     blood_pressure.encode_blood_pressure_feature, blood_pressure.decode_blood_pressure_feature),
    ("spot check", spot_checks, pulse_oximetry.encode_spot_check, pulse_oximetry.decode_spot_check),
    ("continuous", continuous, pulse_oximetry.encode_continuous, pulse_oximetry.decode_continuous),
    ("plx features", plx_features(), pulse_oximetry.encode_plx_features, pulse_oximetry.decode_plx_features),
    ("temperature", temperatures, thermometer.encode_temperature_measurement,
     thermometer.decode_temperature_measurement),
    ("weight", weights(), weight_scale.encode_weight_measurement, weight_scale.decode_weight_measurement),
    ("weight feature", st.builds(weight_scale.WeightScaleFeature, st.integers(0, 0xFFFFFFFF)),
     weight_scale.encode_weight_scale_feature, weight_scale.decode_weight_scale_feature),
    ("racp", racp_messages, racp.encode_racp, racp.decode_racp),
    ("current time", current_times, current_time.encode_current_time, current_time.decode_current_time),
    ("local time", st.builds(current_time.LocalTimeInformation, st.integers(-128, 127), u8),
     current_time.encode_local_time_information, current_time.decode_local_time_information),
    ("pnp id", st.builds(device_info.PnpId, u8, u16, u16, u16), device_info.encode_pnp_id,
     device_info.decode_pnp_id),
]


@pytest.mark.parametrize(("strategy", "encode", "decode"), [r[1:] for r in ROUND_TRIPS],
                         ids=[r[0] for r in ROUND_TRIPS])
def test_encode_then_decode_is_identity(strategy: st.SearchStrategy[Any], encode: Callable[[Any], bytes],
                                        decode: Callable[[bytes], Any]) -> None:
    @given(strategy)
    @settings(max_examples=150, deadline=None)
    def check(value: Any) -> None:
        wire = encode(value)
        decoded = decode(wire)
        assert same(decoded, value), (wire.hex(), decoded, value)
        assert encode(decoded) == wire

    check()


DECODERS: list[Callable[[bytes], Any]] = [
    blood_pressure.decode_blood_pressure_measurement, blood_pressure.decode_intermediate_cuff_pressure,
    blood_pressure.decode_blood_pressure_feature, pulse_oximetry.decode_spot_check,
    pulse_oximetry.decode_continuous, pulse_oximetry.decode_plx_features,
    thermometer.decode_temperature_measurement, thermometer.decode_temperature_type,
    weight_scale.decode_weight_measurement, weight_scale.decode_weight_scale_feature, racp.decode_racp,
    current_time.decode_current_time, current_time.decode_local_time_information, gatt_time.decode_date_time,
    gatt_time.decode_day_date_time, gatt_time.decode_exact_time_256, device_info.decode_dis_string,
    device_info.decode_system_id, device_info.decode_pnp_id, device_info.decode_battery_level,
]


@given(st.binary(max_size=40))
@settings(max_examples=400, deadline=None)
def test_arbitrary_bytes_raise_only_decode_errors(data: bytes) -> None:
    for decode in DECODERS:
        try:
            decode(data)
        except DecodeError as exc:
            assert exc.offset is not None and 0 <= exc.offset <= len(data)


CODEC_NAMES = ["bls.measurement", "bls.intermediate-cuff", "plx.spot-check", "plx.continuous", "hts.temperature",
               "wss.weight", "racp", "cts.current-time"]
CTX = ReadingContext(DeviceIdentity(Transport.BLE, address="AA:BB:CC:DD:EE:FF"),
                     datetime(2024, 3, 31, 1, 30, tzinfo=UTC), ZoneInfo("Europe/Berlin"),
                     clock_skew=timedelta(minutes=-3))


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_codecs_decode_and_map_arbitrary_frames(name: str) -> None:
    codec = get_codec(name)

    @given(st.binary(max_size=32) | st.builds(lambda f, rest: bytes([f]) + rest, u8, st.binary(min_size=4,
                                                                                             max_size=24)))
    @settings(max_examples=300, deadline=None)
    def check(frame: bytes) -> None:
        for found in codec.frames(frame):
            try:
                decoded = codec.decode(found.data)
            except DecodeError:
                continue
            readings = codec.readings(decoded, CTX)
            assert all(isinstance(r, Reading) for r in readings)
            for r in readings:
                assert r.raw and r.device == CTX.device and r.received_at == CTX.received_at
            describe(decoded)   # what `healthhut decode` prints must not fail either

    check()
