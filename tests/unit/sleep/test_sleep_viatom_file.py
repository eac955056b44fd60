"""Viatom stored-file codec: the reference's constructed example (§3.3.2), round trip, broken files."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.registry import get_codec
from healthhut.drivers.codecs.viatom_file import (
    ViatomRecord,
    decode_viatom_file,
    encode_viatom_file,
)
from healthhut.errors import DecodeError
from healthhut.readings import DeviceIdentity, Metric, ReadingKind, Transport
from healthhut.records.sleep.series import night_from_reading

HEADER_HEX = "03 00 E8 07 05 11 16 1E 0F 37 00 00 00 0C 00 00 00 5F 58 01 01 04 00 01 21 55" + " 00" * 14
RECORDS_HEX = "5F 3E 00 03 00  58 40 00 0A 00  FF FF FF 00 00"
EXAMPLE = bytes.fromhex(HEADER_HEX + RECORDS_HEX)
CONTEXT = ReadingContext(device=DeviceIdentity(transport=Transport.BLE, address="C8:1F:66:00:00:01",
                                               model="O2Ring"),
                         received_at=datetime(2024, 5, 18, 7, 0, tzinfo=UTC), timezone=ZoneInfo("Asia/Shanghai"))


def test_reference_example_decodes() -> None:
    decoded = decode_viatom_file(EXAMPLE)
    h = decoded.header
    assert (h.version, h.mode, h.start) == (3, 0, datetime(2024, 5, 17, 22, 30, 15))
    assert (h.file_size, h.duration_s, h.average_spo2, h.minimum_spo2) == (55, 12, 95, 88)
    assert (h.drops_3pct, h.drops_4pct, h.seconds_below_90, h.o2_score) == (1, 1, 4, Decimal("8.5"))
    assert decoded.records == (ViatomRecord(95, 62, 3, 0), ViatomRecord(88, 64, 10, 0),
                               ViatomRecord(None, None, 0, 0))
    assert decoded.interval_s == 4


def test_encode_round_trips() -> None:
    decoded = decode_viatom_file(EXAMPLE)
    assert encode_viatom_file(decoded.header, decoded.records) == EXAMPLE
    longer = (*decoded.records, ViatomRecord(97, 58, 0, 0x40))
    again = decode_viatom_file(encode_viatom_file(replace(decoded.header, duration_s=16), longer))
    assert again.records == longer and again.header.file_size == 60


@pytest.mark.parametrize(("data", "offset", "reason"), [
    (EXAMPLE[:30], 30, "40-byte header"),
    (EXAMPLE[:-5], 9, "truncated"),
    (bytes([4]) + EXAMPLE[1:], 0, "version 4"),
])
def test_broken_files_raise_decode_error(data: bytes, offset: int, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as caught:
        decode_viatom_file(data)
    assert caught.value.offset == offset and caught.value.codec == "viatom.file"


def test_odd_record_area_is_rejected() -> None:
    data = bytearray(EXAMPLE + b"\x00\x00")
    data[9] = len(data)
    with pytest.raises(DecodeError, match="whole number"):
        decode_viatom_file(bytes(data))


def test_codec_gives_an_oximetry_series_reading_the_analysis_accepts() -> None:
    codec = get_codec("viatom.file")
    (frame,) = codec.frames(EXAMPLE)
    (reading,) = codec.readings(codec.decode(frame.data), CONTEXT)
    assert reading.kind is ReadingKind.OXIMETRY_SERIES
    assert reading.measured_at == datetime(2024, 5, 17, 22, 30, 15, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert reading.series[Metric.SPO2].samples == (95.0, 88.0, None)
    assert reading.series[Metric.PULSE_RATE].period.total_seconds() == 4
    night = night_from_reading(reading)
    assert night.spo2 is not None and len(night.spo2.samples) == 12     # 4-s values held to 1 Hz
    assert night.spo2.samples[4:8].tolist() == [88.0] * 4
