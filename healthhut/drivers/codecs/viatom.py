"""Viatom/Wellue "Oxy" BLE framing (O2Ring, Checkme O2, SleepU): CRC-8 framed commands and responses.

Request `AA cmd ~cmd block(u16 LE) len(u16 LE) payload crc`, response `55 status ~status block len payload
crc`; crc = CRC-8 poly 0x07, init 0, over every byte before it (reference serial-and-sleep.md §3.3.1).
Responses arrive split over notifications: `ViatomAssembler` joins them and resynchronises after garbage.
The stored-file payload itself is `viatom_file`'s business.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

from healthhut.drivers.codecs.base import Frame, ReadingContext
from healthhut.errors import DecodeError
from healthhut.readings import Reading

CODEC = "viatom.frame"
REQUEST_START = 0xAA
RESPONSE_START = 0x55
HEADER_SIZE = 7
STATUS_OK = 0x00


class ViatomCommand(IntEnum):
    FILE_OPEN = 0x03
    FILE_READ = 0x04
    FILE_CLOSE = 0x05
    INFO = 0x14
    PING = 0x15
    CONFIG = 0x16
    RT_PARAM = 0x17


def _crc_table() -> tuple[int, ...]:
    rows = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        rows.append(crc)
    return tuple(rows)


_CRC_TABLE = _crc_table()


def crc8_viatom(data: bytes) -> int:
    """CRC-8 (poly 0x07, init 0, no reflection, no xor-out): `AA 17 E8 00 00 00 00` → 0x1B."""
    crc = 0
    for byte in data:
        crc = _CRC_TABLE[crc ^ byte]
    return crc


@dataclass(frozen=True, slots=True)
class ViatomRequest:
    command: int
    block: int = 0
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class ViatomResponse:
    status: int
    block: int = 0
    payload: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


def _frame(start: int, code: int, block: int, payload: bytes) -> bytes:
    head = bytes([start, code & 0xFF, ~code & 0xFF]) + block.to_bytes(2, "little") + len(payload).to_bytes(
        2, "little")
    body = head + payload
    return body + bytes([crc8_viatom(body)])


def encode_request(value: ViatomRequest) -> bytes:
    return _frame(REQUEST_START, value.command, value.block, value.payload)


def encode_response(value: ViatomResponse) -> bytes:
    return _frame(RESPONSE_START, value.status, value.block, value.payload)


def decode_frame(data: bytes) -> ViatomRequest | ViatomResponse:
    """One complete frame; DecodeError names the offset of a bad start, complement, length or CRC."""
    if len(data) < HEADER_SIZE + 1:
        raise DecodeError(f"a frame is at least 8 bytes, got {len(data)}", offset=len(data), codec=CODEC)
    if data[0] not in (REQUEST_START, RESPONSE_START):
        raise DecodeError(f"unknown start byte 0x{data[0]:02X}", offset=0, codec=CODEC)
    if data[1] ^ data[2] != 0xFF:
        raise DecodeError("command byte and its complement disagree", offset=2, codec=CODEC)
    length = int.from_bytes(data[5:7], "little")
    if len(data) != HEADER_SIZE + length + 1:
        raise DecodeError(f"length field says {length} payload bytes, frame has {len(data) - 8}", offset=5,
                          codec=CODEC)
    if crc8_viatom(data[:-1]) != data[-1]:
        raise DecodeError("CRC mismatch", offset=len(data) - 1, codec=CODEC)
    block = int.from_bytes(data[3:5], "little")
    payload = bytes(data[HEADER_SIZE:-1])
    if data[0] == REQUEST_START:
        return ViatomRequest(data[1], block, payload)
    return ViatomResponse(data[1], block, payload)


class ViatomAssembler:
    """Joins notification chunks into whole frames; bytes that cannot start a frame are skipped and counted."""

    def __init__(self, start: int = RESPONSE_START) -> None:
        self._start = start
        self._buffer = bytearray()
        self.discarded = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        frames: list[bytes] = []
        while True:
            index = self._buffer.find(self._start)
            if index < 0:
                self.discarded += len(self._buffer)
                self._buffer.clear()
                return frames
            if index:
                self.discarded += index
                del self._buffer[:index]
            if len(self._buffer) < HEADER_SIZE:
                return frames
            if self._buffer[1] ^ self._buffer[2] != 0xFF:
                self.discarded += 1
                del self._buffer[:1]
                continue
            total = HEADER_SIZE + int.from_bytes(self._buffer[5:7], "little") + 1
            if len(self._buffer) < total:
                return frames
            frames.append(bytes(self._buffer[:total]))
            del self._buffer[:total]


@dataclass(frozen=True, slots=True)
class ViatomInfo:
    """The INFO (0x14) answer: a NUL-padded JSON document."""

    model: str | None
    serial: str | None
    current_time: datetime | None    # device wall clock, naive; None when unset or unparsable
    battery: int | None
    files: tuple[str, ...]


def decode_info(payload: bytes) -> ViatomInfo:
    text = payload.rstrip(b"\x00").decode("utf-8", errors="replace")
    try:
        document: dict[str, Any] = json.loads(text)
    except ValueError as exc:
        raise DecodeError("INFO payload is not JSON", offset=HEADER_SIZE, codec=CODEC) from exc
    clock = None
    try:
        clock = datetime.strptime(str(document.get("CurTIME", "")), "%Y-%m-%d,%H:%M:%S")
    except ValueError:
        clock = None
    files = tuple(name for name in str(document.get("FileList", "")).split(",") if name)
    battery = document.get("CurBAT")
    return ViatomInfo(document.get("Model"), document.get("SN"), clock,
                      int(str(battery).rstrip("%")) if battery not in (None, "") else None, files)


def encode_info(value: ViatomInfo) -> bytes:
    document = {"Model": value.model, "SN": value.serial,
                "CurTIME": value.current_time.strftime("%Y-%m-%d,%H:%M:%S") if value.current_time else "",
                "CurBAT": f"{value.battery}%" if value.battery is not None else "",
                "FileList": ",".join(value.files)}
    return json.dumps(document, separators=(",", ":")).encode() + b"\x00"


def set_time_payload(wall: datetime) -> bytes:
    return json.dumps({"SetTIME": wall.strftime("%Y-%m-%d,%H:%M:%S")}, separators=(",", ":")).encode()


def file_name_payload(name: str) -> bytes:
    return name.encode("ascii") + b"\x00"


class ViatomFrameCodec:
    """`viatom.frame`: command/response frames (no Readings: the night comes from the assembled file)."""

    name = CODEC
    summary = "Viatom/Wellue O2Ring BLE command/response frames (CRC-8)"

    def frames(self, stream: bytes) -> Sequence[Frame]:
        out, offset = [], 0
        for start in (RESPONSE_START, REQUEST_START):
            if stream[:1] == bytes([start]):
                for data in ViatomAssembler(start).feed(stream):
                    out.append(Frame(data, offset))
                    offset += len(data)
        return out

    def decode(self, frame: bytes) -> ViatomRequest | ViatomResponse:
        return decode_frame(frame)

    def readings(self, decoded: Any, context: ReadingContext) -> Sequence[Reading]:
        return []
