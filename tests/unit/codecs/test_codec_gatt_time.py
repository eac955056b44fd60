"""Date Time / Day Date Time / Exact Time 256 / Current Time / Local Time Information, and reading_time()."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.current_time import (
    AdjustReason,
    CurrentTime,
    CurrentTimeCodec,
    LocalTimeInformation,
    decode_current_time,
    decode_local_time_information,
    encode_current_time,
    encode_local_time_information,
)
from healthhut.drivers.codecs.gatt_time import (
    DayDateTime,
    DeviceTime,
    ExactTime256,
    decode_date_time,
    decode_day_date_time,
    decode_exact_time_256,
    encode_date_time,
    encode_day_date_time,
    encode_exact_time_256,
    reading_time,
)
from healthhut.errors import DecodeError
from healthhut.readings import DeviceIdentity, TimeSource, Transport

NAIROBI = ZoneInfo("Africa/Nairobi")
CTX = ReadingContext(DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74"),
                     datetime(2024, 6, 23, 12, 0, tzinfo=UTC), NAIROBI)


def test_date_time_vector() -> None:
    t = decode_date_time(bytes.fromhex("E8 07 06 17 0E 23 0A"))
    assert t == DeviceTime(2024, 6, 23, 14, 35, 10)
    assert t.wall_time == datetime(2024, 6, 23, 14, 35, 10)
    assert t.known
    assert encode_date_time(datetime(2024, 6, 23, 14, 35, 10)) == bytes.fromhex("E8 07 06 17 0E 23 0A")


def test_real_capture_timestamp() -> None:
    assert decode_date_time(bytes.fromhex("DD 07 08 1A 09 0A 14")).wall_time == datetime(2013, 8, 26, 9, 10, 20)


@pytest.mark.parametrize("wire", ["00 00 00 00 00 00 00", "00 00 06 17 0E 23 0A", "E8 07 00 17 0E 23 0A",
                                  "E8 07 06 00 0E 23 0A"])
def test_year_month_or_day_zero_is_unknown(wire: str) -> None:
    t = decode_date_time(bytes.fromhex(wire))
    assert t.wall_time is None
    assert not t.known
    assert encode_date_time(t) == bytes.fromhex(wire)   # the raw fields survive


@pytest.mark.parametrize("wire", ["E8 07 0D 17 0E 23 0A", "E8 07 02 1E 00 00 00", "E8 07 06 17 18 00 00",
                                  "E8 07 06 17 0E 3C 00", "10 27 01 01 00 00 00"])
def test_impossible_dates_are_unknown_not_errors(wire: str) -> None:
    assert decode_date_time(bytes.fromhex(wire)).wall_time is None


def test_unknown_constructor_encodes_all_zero() -> None:
    assert encode_date_time(DeviceTime.unknown()) == bytes(7)


@pytest.mark.parametrize("length", range(7))
def test_short_date_time_raises_with_offset(length: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode_date_time(bytes.fromhex("E8 07 06 17 0E 23 0A")[:length])
    assert info.value.offset == (0 if length < 2 else length)


def test_date_time_with_extra_bytes_is_rejected() -> None:
    with pytest.raises(DecodeError) as info:
        decode_date_time(bytes.fromhex("E8 07 06 17 0E 23 0A 00"))
    assert info.value.offset == 7


def test_day_date_time_and_exact_time_256() -> None:
    day = decode_day_date_time(bytes.fromhex("E8 07 06 17 0E 23 0A 07"))
    assert day == DayDateTime(DeviceTime(2024, 6, 23, 14, 35, 10), 7)
    assert encode_day_date_time(day) == bytes.fromhex("E8 07 06 17 0E 23 0A 07")
    exact = decode_exact_time_256(bytes.fromhex("E8 07 06 17 0E 23 0A 07 80"))
    assert exact.fractions256 == 0x80
    assert exact.wall_time == datetime(2024, 6, 23, 14, 35, 10, 500000)
    assert encode_exact_time_256(exact) == bytes.fromhex("E8 07 06 17 0E 23 0A 07 80")


def test_current_time_vector_sets_a_sunday_manual_update() -> None:
    wire = bytes.fromhex("E8 07 06 17 0E 23 0A 07 00 01")
    value = CurrentTime.from_datetime(datetime(2024, 6, 23, 14, 35, 10), AdjustReason.MANUAL_UPDATE)
    assert encode_current_time(value) == wire
    decoded = decode_current_time(wire)
    assert decoded == value
    assert decoded.wall_time == datetime(2024, 6, 23, 14, 35, 10)
    assert decoded.adjust_reason is AdjustReason.MANUAL_UPDATE


def test_current_time_adjust_reason_bits_and_surplus() -> None:
    decoded = decode_current_time(bytes.fromhex("E8 07 06 17 0E 23 0A 07 00 0E AA"))
    assert decoded.adjust_reason == (AdjustReason.EXTERNAL_REFERENCE_UPDATE | AdjustReason.TIME_ZONE_CHANGE
                                     | AdjustReason.DST_CHANGE)
    assert decoded.surplus == b"\xaa"


@pytest.mark.parametrize("length", range(10))
def test_short_current_time_raises(length: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode_current_time(bytes.fromhex("E8 07 06 17 0E 23 0A 07 00 01")[:length])
    assert info.value.offset == (0 if length < 2 else length)


def test_current_time_codec_gives_no_readings() -> None:
    codec = CurrentTimeCodec()
    decoded = codec.decode(bytes.fromhex("E8 07 06 17 0E 23 0A 07 00 01"))
    assert codec.readings(decoded, CTX) == []


def test_current_time_from_datetime_keeps_fractions() -> None:
    value = CurrentTime.from_datetime(datetime(2024, 6, 24, 0, 0, 0, 250000))
    assert value.exact_time.day_of_week == 1 and value.exact_time.fractions256 == 64


@pytest.mark.parametrize(("wire", "zone", "dst"), [("0C 00", timedelta(hours=3), timedelta(0)),
                                                   ("EC 04", timedelta(hours=-5), timedelta(hours=1)),
                                                   ("80 FF", None, None)])
def test_local_time_information(wire: str, zone: timedelta | None, dst: timedelta | None) -> None:
    info = decode_local_time_information(bytes.fromhex(wire))
    assert info.utc_offset == zone and info.dst == dst
    assert encode_local_time_information(info) == bytes.fromhex(wire)


def test_local_time_from_offsets() -> None:
    assert encode_local_time_information(LocalTimeInformation.from_offsets(timedelta(hours=-5),
                                                                           timedelta(hours=1))) == b"\xec\x04"
    with pytest.raises(ValueError):
        LocalTimeInformation.from_offsets(timedelta(minutes=10))


def test_reading_time_sources() -> None:
    at, source = reading_time(None, CTX)
    assert (at, source) == (CTX.received_at, TimeSource.RECEIPT)
    at, source = reading_time(DeviceTime.unknown(), CTX)
    assert (at, source) == (None, TimeSource.UNKNOWN)
    at, source = reading_time(DeviceTime(2024, 6, 23, 14, 35, 10), CTX)
    assert source is TimeSource.DEVICE
    assert at == datetime(2024, 6, 23, 14, 35, 10, tzinfo=NAIROBI)
    assert at is not None and at.utcoffset() == timedelta(hours=3)
    assert reading_time(DeviceTime(2024, 6, 23, 14, 35, 10), CTX, clock_not_set=True) == (None, TimeSource.UNKNOWN)


date_times = st.builds(DeviceTime, st.integers(0, 0xFFFF), *(st.integers(0, 255) for _ in range(5)))


@given(date_times, st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
def test_current_time_round_trip(time: DeviceTime, dow: int, fractions: int, reason: int) -> None:
    value = CurrentTime(ExactTime256(time, dow, fractions), AdjustReason(reason))
    assert decode_current_time(encode_current_time(value)) == value
    assert decode_date_time(encode_date_time(time)) == time


@given(st.binary(max_size=16))
def test_time_decoders_raise_only_decode_errors(data: bytes) -> None:
    for decoder in (decode_date_time, decode_day_date_time, decode_exact_time_256, decode_current_time,
                    decode_local_time_information):
        try:
            value = decoder(data)
        except DecodeError:
            continue
        wall = getattr(value, "wall_time", None)
        assert wall is None or isinstance(wall, datetime)
