"""RACP requests/responses (the reference sequences) and Device Information values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.device_info import (
    PnpId,
    decode_battery_level,
    decode_dis_string,
    decode_pnp_id,
    decode_system_id,
    encode_battery_level,
    encode_pnp_id,
    encode_system_id,
    system_id_from_address,
)
from healthhut.drivers.codecs.racp import (
    RacpCodec,
    RacpFilterType,
    RacpLatestSequence,
    RacpNumberOfRecords,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponseCode,
    RacpResponseValue,
    abort_operation,
    decode_racp,
    encode_racp,
    report_all_records,
    report_number_of_all_records,
    report_records_from,
)
from healthhut.drivers.codecs.registry import get_codec
from healthhut.errors import DecodeError
from healthhut.readings import DeviceIdentity, Transport

CTX = ReadingContext(DeviceIdentity(Transport.BLE, address="AA:BB:CC:DD:EE:FF"),
                     datetime(2024, 1, 1, tzinfo=UTC), UTC)


@pytest.mark.parametrize(("wire", "message"), [
    ("04 01", report_number_of_all_records()),
    ("05 00 25 00", RacpNumberOfRecords(37)),
    ("01 01", report_all_records()),
    ("06 00 01 01", RacpResponseCode(0x01, 0x01)),
    ("06 00 01 06", RacpResponseCode(0x01, 0x06)),
    ("01 03 01 23 01", report_records_from(0x0123)),
    ("01 03 04 FF FF", report_records_from(0xFFFF, RacpFilterType.OMRON_SEQUENCE_NUMBER)),
    ("10 00", RacpRequest(RacpOpCode.OMRON_REPORT_LATEST_SEQUENCE, RacpOperator.NULL)),
    ("11 00 34 12", RacpLatestSequence(0x1234)),
    ("03 00", abort_operation()),
    ("06 00 03 01", RacpResponseCode(0x03, 0x01)),
    ("02 04 01 0A 00 14 00", RacpRequest(RacpOpCode.DELETE_STORED_RECORDS, RacpOperator.WITHIN_RANGE, 1, (10, 20))),
    ("04 02 01 05 00", RacpRequest(RacpOpCode.REPORT_NUMBER_OF_RECORDS, RacpOperator.LESS_OR_EQUAL, 1, (5,))),
    ("01 03 02 E8 07 06 17 0E 23 0A",
     RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.GREATER_OR_EQUAL, 2,
                 operand=bytes.fromhex("E8 07 06 17 0E 23 0A"))),
    ("01 05", RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.FIRST_RECORD)),
    ("01 06", RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.LAST_RECORD)),
])
def test_reference_sequences_both_ways(wire: str, message: object) -> None:
    assert decode_racp(bytes.fromhex(wire)) == message
    assert encode_racp(message) == bytes.fromhex(wire)  # type: ignore[arg-type]


def test_response_code_views() -> None:
    ok = decode_racp(bytes.fromhex("06 00 01 01"))
    assert isinstance(ok, RacpResponseCode) and ok.succeeded and ok.response is RacpResponseValue.SUCCESS
    none = decode_racp(bytes.fromhex("06 00 01 06"))
    assert isinstance(none, RacpResponseCode) and not none.succeeded
    assert none.response is RacpResponseValue.NO_RECORDS_FOUND
    reserved = decode_racp(bytes.fromhex("06 00 01 7F"))
    assert isinstance(reserved, RacpResponseCode) and reserved.response is None
    assert [v.value for v in RacpResponseValue] == list(range(1, 10))


@pytest.mark.parametrize(("wire", "offset"), [
    ("", 0), ("06", 1), ("06 00", 2), ("06 00 01", 3), ("05 00 25", 2), ("01", 1), ("01 03", 2), ("01 03 01 23", 3),
    ("02 04 01 0A 00 14", 5), ("11 00", 2), ("07 00", 0), ("FF", 0), ("01 09", 1),
])
def test_bad_frames_raise_with_offset(wire: str, offset: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode_racp(bytes.fromhex(wire))
    assert info.value.offset == offset


def test_surplus_and_longer_counts() -> None:
    assert decode_racp(bytes.fromhex("05 00 25 00 00 00")) == RacpNumberOfRecords(37, b"\x00\x00")
    assert decode_racp(bytes.fromhex("01 01 AA")) == RacpRequest(RacpOpCode.REPORT_STORED_RECORDS,
                                                                 RacpOperator.ALL_RECORDS, surplus=b"\xaa")


def test_encoder_refuses_inconsistent_requests() -> None:
    with pytest.raises(ValueError):
        encode_racp(RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.WITHIN_RANGE, 1, (1,)))
    with pytest.raises(ValueError):
        encode_racp(RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.GREATER_OR_EQUAL))
    with pytest.raises(ValueError):
        encode_racp(RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS, 1, (1,)))


def test_racp_codec_via_registry_gives_no_readings() -> None:
    codec = get_codec("racp")
    assert isinstance(codec, RacpCodec)
    decoded = codec.decode(bytes.fromhex("06 00 01 01"))
    assert decoded == RacpResponseCode(1, 1)
    assert codec.readings(decoded, CTX) == []
    assert get_codec("cts.current-time").name == "cts.current-time"


def test_dis_strings_are_trimmed() -> None:
    assert decode_dis_string(b"OMRON HEALTHCARE\x00\x00") == "OMRON HEALTHCARE"
    assert decode_dis_string(b"UA-651BLE  ") == "UA-651BLE"
    assert decode_dis_string("Måler".encode()) == "Måler"
    with pytest.raises(DecodeError) as info:
        decode_dis_string(b"ab\xff")
    assert info.value.offset == 2


def test_system_id_canonical_order() -> None:
    assert decode_system_id(bytes.fromhex("74 E8 FF FE FF 05 1C 00")) == "001C05FFFEFFE874"
    assert encode_system_id("001C05FFFEFFE874") == bytes.fromhex("74 E8 FF FE FF 05 1C 00")
    assert system_id_from_address("00:1C:05:FF:E8:74") == "001C05FFFEFFE874"
    assert system_id_from_address("12:34:56:9a:bc:de") == "123456FFFE9ABCDE"
    with pytest.raises(DecodeError):
        decode_system_id(bytes(7))
    with pytest.raises(ValueError):
        system_id_from_address("00:1C:05")


def test_pnp_id_and_battery() -> None:
    pnp = decode_pnp_id(bytes.fromhex("01 0E 02 34 12 00 01"))
    assert pnp == PnpId(1, 0x020E, 0x1234, 0x0100)
    assert encode_pnp_id(pnp) == bytes.fromhex("01 0E 02 34 12 00 01")
    assert decode_battery_level(b"\x64") == 100 and encode_battery_level(55) == b"\x37"
    with pytest.raises(DecodeError):
        decode_battery_level(b"\x65")
    with pytest.raises(DecodeError):
        decode_pnp_id(bytes(6))
