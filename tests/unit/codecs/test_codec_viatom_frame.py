"""Viatom/Wellue BLE framing vectors (serial-and-sleep.md §3.3.1), CRC-8 poly 0x07."""

from __future__ import annotations

from datetime import datetime

import pytest

from healthhut.drivers.codecs.registry import get_codec
from healthhut.drivers.codecs.viatom import (
    ViatomAssembler,
    ViatomInfo,
    ViatomRequest,
    ViatomResponse,
    crc8_viatom,
    decode_frame,
    decode_info,
    encode_info,
    encode_request,
    set_time_payload,
)
from healthhut.errors import DecodeError

RT_PARAM_REPLY = bytes.fromhex("55 00 FF 00 00 0D 00 60 46 00 10 27 00 00 58 00 03 19 01 00 18")
SET_TIME = bytes.fromhex("AA 16 E9 00 00 21 00 7B 22 53 65 74 54 49 4D 45 22 3A 22 32 30 32 34 2D 30 35 2D 31 37"
                         " 2C 32 31 3A 33 30 3A 30 35 22 7D 1C")


@pytest.mark.parametrize(("command", "block", "hex_frame"), [
    (0x14, 0, "AA 14 EB 00 00 00 00 C6"), (0x17, 0, "AA 17 E8 00 00 00 00 1B"),
    (0x1B, 0, "AA 1B E4 00 00 00 00 66"), (0x04, 5, "AA 04 FB 05 00 00 00 24"),
    (0x05, 0, "AA 05 FA 00 00 00 00 21")])
def test_request_vectors(command: int, block: int, hex_frame: str) -> None:
    assert encode_request(ViatomRequest(command, block)) == bytes.fromhex(hex_frame)
    assert decode_frame(bytes.fromhex(hex_frame)) == ViatomRequest(command, block)


def test_check_value_and_set_time() -> None:
    assert crc8_viatom(bytes.fromhex("AA17E800000000")) == 0x1B
    assert encode_request(ViatomRequest(0x16, 0, set_time_payload(datetime(2024, 5, 17, 21, 30, 5)))) == SET_TIME


def test_response_reassembled_from_chunks_after_garbage() -> None:
    assembler = ViatomAssembler()
    frames = assembler.feed(b"\x01\x02" + RT_PARAM_REPLY[:6]) + assembler.feed(RT_PARAM_REPLY[6:])
    assert frames == [RT_PARAM_REPLY] and assembler.discarded == 2
    response = decode_frame(frames[0])
    assert isinstance(response, ViatomResponse) and response.ok and response.payload[0] == 96


@pytest.mark.parametrize(("hex_frame", "offset"), [
    ("AA 14 EB 00 00 00 00 C7", 7), ("AA 14 EA 00 00 00 00 C6", 2), ("AA 14 EB 00 00 05 00 C6", 5),
    ("12 14 EB 00 00 00 00 C6", 0), ("AA 14", 2)])
def test_broken_frames_name_the_offset(hex_frame: str, offset: int) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_frame(bytes.fromhex(hex_frame))
    assert caught.value.offset == offset


def test_info_round_trip_and_unset_clock() -> None:
    info = ViatomInfo("O2Ring", "2205C0001", datetime(2024, 5, 17, 21, 30, 5), 88, ("20240517223015",))
    assert decode_info(encode_info(info)) == info
    assert decode_info(b'{"CurTIME":"","FileList":""}\x00\x00').current_time is None


def test_registered() -> None:
    codec = get_codec("viatom.frame")
    [frame] = codec.frames(RT_PARAM_REPLY)
    assert codec.readings(codec.decode(frame.data), None) == []  # type: ignore[arg-type]
