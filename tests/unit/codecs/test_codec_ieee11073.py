"""SFLOAT/FLOAT: the reference table, special values by exact raw value, exponent choice when encoding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthhut.drivers.codecs.ieee11073 import (
    ByteReader,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
    float_from_raw,
    sfloat_from_raw,
    to_quantity,
)
from healthhut.errors import DecodeError
from healthhut.readings import AbsentReason, Unit

SFLOAT_TABLE = [  # wire hex, exact Decimal string (the exponent is the resolution)
    ("78 00", "120"), ("50 00", "80"), ("5D 00", "93"), ("A5 F3", "93.3"), ("61 00", "97"), ("48 00", "72"),
    ("D5 F2", "72.5"), ("A0 F0", "16.0"), ("B0 F0", "17.6"), ("C8 E0", "2.00"), ("02 10", "2E+1"),
    ("2E 0B", "-1234"), ("02 00", "2"), ("14 F0", "2.0"), ("02 20", "2E+2"), ("C8 00", "200"), ("D2 04", "1234"),
    ("80 00", "128"),
]
FLOAT_TABLE = [
    ("70 01 00 FF", "36.8"), ("DA 03 00 FF", "98.6"), ("8D 0E 00 FE", "37.25"), ("FB FF FF FF", "-0.5"),
    ("14 00 00 FF", "2.0"), ("C8 00 00 FE", "2.00"), ("02 00 00 01", "2E+1"), ("2E FB FF 00", "-1234"),
]
SFLOAT_SPECIALS = [("FF 07", AbsentReason.NOT_A_NUMBER), ("00 08", AbsentReason.NOT_REPRESENTABLE),
                   ("FE 07", AbsentReason.POSITIVE_INFINITY), ("02 08", AbsentReason.NEGATIVE_INFINITY),
                   ("01 08", AbsentReason.RESERVED)]
FLOAT_SPECIALS = [("FF FF 7F 00", AbsentReason.NOT_A_NUMBER), ("00 00 80 00", AbsentReason.NOT_REPRESENTABLE),
                  ("FE FF 7F 00", AbsentReason.POSITIVE_INFINITY), ("02 00 80 00", AbsentReason.NEGATIVE_INFINITY),
                  ("01 00 80 00", AbsentReason.RESERVED)]


@pytest.mark.parametrize(("wire", "expected"), SFLOAT_TABLE)
def test_sfloat_table_decodes_with_resolution(wire: str, expected: str) -> None:
    value = decode_sfloat(bytes.fromhex(wire))
    assert isinstance(value, Decimal)
    assert value.as_tuple() == Decimal(expected).as_tuple()


@pytest.mark.parametrize(("wire", "expected"), SFLOAT_TABLE)
def test_sfloat_table_encodes_back_to_the_same_bytes(wire: str, expected: str) -> None:
    assert encode_sfloat(Decimal(expected)) == bytes.fromhex(wire)


@pytest.mark.parametrize(("wire", "expected"), FLOAT_TABLE)
def test_float_table_round_trips(wire: str, expected: str) -> None:
    value = decode_float(bytes.fromhex(wire))
    assert isinstance(value, Decimal)
    assert value.as_tuple() == Decimal(expected).as_tuple()
    assert encode_float(Decimal(expected)) == bytes.fromhex(wire)


def test_e0c8_is_two_point_zero_zero() -> None:
    assert str(sfloat_from_raw(0xE0C8)) == "2.00"
    assert str(float_from_raw(0xFE0000C8)) == "2.00"
    assert float_from_raw(0xFF000014) == Decimal("2.0")
    assert float_from_raw(0x01000002) == Decimal(20)
    assert float_from_raw(0x00FFFB2E) == Decimal(-1234)


@pytest.mark.parametrize(("wire", "reason"), SFLOAT_SPECIALS)
def test_sfloat_specials(wire: str, reason: AbsentReason) -> None:
    assert decode_sfloat(bytes.fromhex(wire)) is reason
    assert encode_sfloat(reason) == bytes.fromhex(wire)


@pytest.mark.parametrize(("wire", "reason"), FLOAT_SPECIALS)
def test_float_specials(wire: str, reason: AbsentReason) -> None:
    assert decode_float(bytes.fromhex(wire)) is reason
    assert encode_float(reason) == bytes.fromhex(wire)


def test_special_mantissa_with_nonzero_exponent_is_a_number() -> None:
    # exact-raw rule: 0xF7FF is 2047 x 10^-1, not NaN
    assert decode_sfloat(bytes.fromhex("FF F7")) == Decimal("204.7")
    assert decode_sfloat(bytes.fromhex("00 F8")) == Decimal("-204.8")
    assert decode_float(bytes.fromhex("FF FF 7F FF")) == Decimal("838860.7")


def test_negative_exponent_is_sign_extended_not_biased() -> None:
    assert decode_sfloat(bytes.fromhex("00 80")) == Decimal("0E-8")
    assert decode_sfloat(bytes.fromhex("01 70")) == Decimal("1E+7")
    assert decode_float(bytes.fromhex("01 00 00 80")) == Decimal("1E-128")


@pytest.mark.parametrize("bad", ["", "78", "78 00 00"])
def test_decode_sfloat_needs_exactly_two_bytes(bad: str) -> None:
    with pytest.raises(DecodeError):
        decode_sfloat(bytes.fromhex(bad))


def test_encode_with_explicit_exponent() -> None:
    assert encode_sfloat(Decimal(120), exponent=1) == bytes.fromhex("0C 10")
    assert encode_sfloat(Decimal("2"), exponent=-2) == bytes.fromhex("C8 E0")
    with pytest.raises(ValueError, match="mantissa"):
        encode_sfloat(Decimal("72.5"), exponent=-2)
    with pytest.raises(ValueError, match="digits"):
        encode_sfloat(Decimal("72.5"), exponent=0)


def test_encode_drops_trailing_zeros_only_when_needed() -> None:
    assert encode_sfloat(Decimal("120.00")) == bytes.fromhex("B0 F4")   # 1200 x 10^-1 fits after one drop
    assert encode_sfloat(Decimal("1E+9")) == bytes.fromhex("64 70")     # 100 x 10^7
    assert decode_sfloat(encode_sfloat(Decimal("0E-12"))) == 0


@pytest.mark.parametrize("value", ["2046", "2047", "-2046", "-2048", "204.6", "12345", "0.000000001", "1E+11",
                                   "NaN", "Infinity"])
def test_encode_rejects_unrepresentable(value: str) -> None:
    with pytest.raises(ValueError):
        encode_sfloat(Decimal(value))


def test_encode_rejects_absent_reasons_without_a_special_value() -> None:
    with pytest.raises(ValueError):
        encode_sfloat(AbsentReason.MEASUREMENT_FAILED)
    with pytest.raises(ValueError):
        encode_float(AbsentReason.SENSOR_OFF)


def test_float_range() -> None:
    assert decode_float(encode_float(Decimal("8388605"))) == Decimal(8388605)
    with pytest.raises(ValueError):
        encode_float(Decimal("8388606"))
    with pytest.raises(ValueError):
        encode_float(Decimal("1E-129"))


@given(st.integers(-2045, 2045), st.integers(-8, 7))
def test_sfloat_round_trip_keeps_mantissa_and_exponent(mantissa: int, exponent: int) -> None:
    value = Decimal(f"{mantissa}E{exponent}")
    decoded = decode_sfloat(encode_sfloat(value))
    assert isinstance(decoded, Decimal)
    assert decoded.as_tuple() == value.as_tuple()


@given(st.integers(-8388605, 8388605), st.integers(-128, 127))
def test_float_round_trip_keeps_mantissa_and_exponent(mantissa: int, exponent: int) -> None:
    value = Decimal(f"{mantissa}E{exponent}")
    decoded = decode_float(encode_float(value))
    assert isinstance(decoded, Decimal)
    assert decoded.as_tuple() == value.as_tuple()


@given(st.integers(0, 0xFFFF))
def test_every_sfloat_raw_decodes_and_re_encodes_unless_in_the_special_mantissa_band(raw: int) -> None:
    value = sfloat_from_raw(raw)
    mantissa = raw & 0xFFF
    if mantissa in range(0x7FE, 0x803) and not isinstance(value, AbsentReason):
        with pytest.raises(ValueError):
            encode_sfloat(value, exponent=(raw >> 12) - (16 if raw >> 15 else 0))
        return
    assert encode_sfloat(value) == raw.to_bytes(2, "little")


def test_to_quantity_writes_positive_exponents_out() -> None:
    assert str(to_quantity(Decimal("2E+1"), Unit.MMHG).value) == "20"
    assert str(to_quantity(Decimal("2.00"), Unit.MMHG).value) == "2.00"
    missing = to_quantity(AbsentReason.NOT_A_NUMBER, Unit.MMHG)
    assert missing.value is None and missing.absent is AbsentReason.NOT_A_NUMBER


def test_reader_reports_the_offset_of_the_missing_field() -> None:
    reader = ByteReader(bytes.fromhex("01 02 03"), "test")
    assert reader.u8() == 1
    with pytest.raises(DecodeError) as info:
        reader.u24("thing")
    assert info.value.offset == 1
    assert "thing" in str(info.value)


def test_to_quantity_writes_out_huge_float_exponents_exactly() -> None:
    value = float_from_raw(0x7F00000A)   # 10 x 10^127
    q = to_quantity(value, Unit.CELSIUS)
    assert q.value == Decimal("1E+128") and q.value is not None and q.value.as_tuple().exponent == 0
