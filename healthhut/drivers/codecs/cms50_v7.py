"""Contec CMS50 generation B ("pulse oximeter protocol V7.0", 115200 8N1): high-byte packets, both ways.

A packet is a type byte (bit 7 clear), a "high-byte" holding the real bit 7 of each data byte, and data
bytes sent with bit 7 forced to 1. There is no checksum; the type byte is the only resync marker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from healthhut.drivers.codecs.base import Frame, ReadingContext
from healthhut.drivers.codecs.framing import HighByteFramer
from healthhut.drivers.codecs.oximeter_sample import OximeterSample, live_reading
from healthhut.errors import DecodeError
from healthhut.readings import Reading

CODEC = "cms50.v7"

# Packet length by type byte (uplink from the V7.0 document and OSCAR; 0x7D is the host's control command).
PACKET_LENGTHS: dict[int, int] = {
    0x01: 9, 0x02: 9, 0x03: 9, 0x04: 9, 0x05: 9, 0x06: 4, 0x07: 8, 0x08: 8, 0x09: 6, 0x0A: 4,
    0x0B: 4, 0x0C: 2, 0x0D: 3, 0x0E: 3, 0x0F: 8, 0x10: 3, 0x11: 9, 0x12: 8, 0x15: 9, 0x7D: 9,
}

LIVE, STORED_DATE, STORED_LENGTH, STORED_PI, SEGMENTS = 0x01, 0x07, 0x08, 0x09, 0x0A
FEEDBACK, FREE_FEEDBACK, DISCONNECT, PI_SUPPORT, STORED, USERS, NOTICE = 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11
STORED_TIME, CONTROL = 0x12, 0x7D

# Control commands (type 0x7D)
CMD_START_LIVE, CMD_STOP_LIVE, CMD_SEGMENTS, CMD_LENGTH, CMD_START_TIME = 0xA1, 0xA2, 0xA3, 0xA4, 0xA5
CMD_SEND_STORED, CMD_STOP_STORED, CMD_MODEL, CMD_VENDOR, CMD_DEVICE_ID = 0xA6, 0xA7, 0xA8, 0xA9, 0xAA
CMD_KEEP_ALIVE, CMD_SET_TIME, CMD_SET_DATE = 0xAF, 0xB1, 0xB2

REASONS = {0x00: "done", 0x01: "device shutting down", 0x02: "user switched", 0x03: "recording in progress",
           0x04: "delete failed", 0x05: "command not supported", 0xFF: "unknown"}
TEXT_TYPES = {0x02: "model", 0x03: "vendor", 0x04: "device_id", 0x05: "user"}


def pack(kind: int, data: bytes) -> bytes:
    """Encode one packet: set bit 7 on each data byte and carry its real bit 7 in the high-byte."""
    if kind & 0x80 or len(data) > 7:
        raise ValueError("type byte must have bit 7 clear and data hold at most 7 bytes")
    high = 0x80
    for i, byte in enumerate(data):
        if byte & 0x80:
            high |= 1 << i
    return bytes((kind, high)) + bytes(b | 0x80 for b in data)


def unpack(packet: bytes) -> bytes:
    """The real data bytes of one packet (bytes 2.. with bit 7 restored from the high-byte)."""
    if len(packet) < 2:
        return b""
    high = packet[1]
    return bytes((b & 0x7F) | (0x80 if high & (1 << i) else 0) for i, b in enumerate(packet[2:9]))


def command(code: int, *args: int) -> bytes:
    """A 9-byte 0x7D control command; unused argument bytes are 0."""
    data = bytes((code, *args))
    return pack(CONTROL, data.ljust(7, b"\x00"))


@dataclass(frozen=True, slots=True)
class V7LiveData:
    signal_strength: int
    searching_too_long: bool
    low_spo2: bool
    beep: bool
    probe_error: bool
    pleth: int
    searching: bool
    bar_graph: int
    pi_invalid: bool
    pulse_rate: int           # 0xFF = invalid
    spo2: int                 # 0x7F = invalid
    pi_raw: int               # hundredths of a percent; 0xFFFF = invalid

    @property
    def perfusion_index(self) -> Decimal | None:
        if self.pi_invalid or self.pi_raw == 0xFFFF or self.pi_raw > 2200:
            return None
        return Decimal(self.pi_raw).scaleb(-2)

    def sample(self) -> OximeterSample:
        return OximeterSample(self.spo2, self.pulse_rate, self.perfusion_index,
                              finger_out=self.probe_error, searching=self.searching)


@dataclass(frozen=True, slots=True)
class V7StoredSample:
    spo2: int
    pulse_rate: int
    pi_raw: int | None = None


@dataclass(frozen=True, slots=True)
class V7StoredSamples:
    samples: tuple[V7StoredSample, ...]


@dataclass(frozen=True, slots=True)
class V7StoredLength:
    user: int
    segment: int
    length: int


@dataclass(frozen=True, slots=True)
class V7StoredDate:
    user: int
    segment: int
    year: int
    month: int
    day: int


@dataclass(frozen=True, slots=True)
class V7StoredTime:
    user: int
    segment: int
    hour: int
    minute: int
    second: int


@dataclass(frozen=True, slots=True)
class V7Segments:
    user: int
    segments: int


@dataclass(frozen=True, slots=True)
class V7Feedback:
    """0x0B answer to a command (reason 0 done); 0x0C "free feedback" has command and reason None."""

    command: int | None
    reason: int | None

    @property
    def reason_text(self) -> str:
        return "free" if self.reason is None else REASONS.get(self.reason, "unknown")


@dataclass(frozen=True, slots=True)
class V7Disconnect:
    reason: int


@dataclass(frozen=True, slots=True)
class V7Text:
    field: str
    text: str
    prefix: int | None = None   # user index (0x05) or segment marker (0x02)


@dataclass(frozen=True, slots=True)
class V7Command:
    command: int
    args: bytes


@dataclass(frozen=True, slots=True)
class V7Other:
    kind: int
    data: bytes


V7Packet = (V7LiveData | V7StoredSamples | V7StoredLength | V7StoredDate | V7StoredTime | V7Segments
            | V7Feedback | V7Disconnect | V7Text | V7Command | V7Other)


def _text(data: bytes) -> str:
    return data.rstrip(b"\x00").decode("ascii", errors="replace")


def decode_packet(packet: bytes) -> V7Packet:
    """Decode one framed V7 packet; DecodeError on a wrong length or a bit-7 violation."""
    if not packet:
        raise DecodeError("empty packet", offset=0, codec=CODEC)
    kind = packet[0]
    if kind & 0x80:
        raise DecodeError("type byte has bit 7 set", offset=0, codec=CODEC)
    expected = PACKET_LENGTHS.get(kind)
    if expected is None:
        raise DecodeError(f"unknown packet type 0x{kind:02X}", offset=0, codec=CODEC)
    if len(packet) != expected:
        raise DecodeError(f"type 0x{kind:02X} needs {expected} bytes, got {len(packet)}", offset=0, codec=CODEC)
    for i in range(1, len(packet)):
        if not packet[i] & 0x80:
            raise DecodeError("data byte has bit 7 clear", offset=i, codec=CODEC)
    d = unpack(packet)
    if kind == LIVE:
        return V7LiveData(
            signal_strength=d[0] & 0x0F, searching_too_long=bool(d[0] & 0x10), low_spo2=bool(d[0] & 0x20),
            beep=bool(d[0] & 0x40), probe_error=bool(d[0] & 0x80), pleth=d[1] & 0x7F, searching=bool(d[1] & 0x80),
            bar_graph=d[2] & 0x0F, pi_invalid=bool(d[2] & 0x10), pulse_rate=d[3], spo2=d[4],
            pi_raw=d[5] | d[6] << 8)
    if kind == STORED:
        return V7StoredSamples(tuple(V7StoredSample(d[i], d[i + 1]) for i in range(0, 6, 2)))
    if kind == STORED_PI:
        return V7StoredSamples((V7StoredSample(d[0], d[1], d[2] | d[3] << 8),))
    if kind == STORED_LENGTH:
        return V7StoredLength(d[0], d[1], int.from_bytes(d[2:6], "little"))
    if kind == STORED_DATE:
        return V7StoredDate(d[0], d[1], d[2] * 100 + d[3], d[4], d[5])
    if kind == STORED_TIME:
        return V7StoredTime(d[0], d[1], d[2], d[3], d[4])
    if kind == SEGMENTS:
        return V7Segments(d[0], d[1])
    if kind == FEEDBACK:
        return V7Feedback(d[0], d[1])
    if kind == FREE_FEEDBACK:
        return V7Feedback(None, None)
    if kind == DISCONNECT:
        return V7Disconnect(d[0])
    if kind in TEXT_TYPES:
        if kind in (0x02, 0x05):
            return V7Text(TEXT_TYPES[kind], _text(d[1:]), d[0])
        return V7Text(TEXT_TYPES[kind], _text(d))
    if kind == CONTROL:
        return V7Command(d[0], d[1:])
    return V7Other(kind, d)


def encode_live(sample: V7LiveData) -> bytes:
    d0 = (min(sample.signal_strength, 15) | sample.searching_too_long << 4 | sample.low_spo2 << 5
          | sample.beep << 6 | sample.probe_error << 7)
    d1 = (sample.pleth & 0x7F) | sample.searching << 7
    d2 = (sample.bar_graph & 0x0F) | sample.pi_invalid << 4
    return pack(LIVE, bytes((d0, d1, d2, sample.pulse_rate & 0xFF, sample.spo2 & 0xFF,
                             sample.pi_raw & 0xFF, sample.pi_raw >> 8 & 0xFF)))


def encode_stored_samples(samples: Sequence[tuple[int, int]]) -> bytes:
    """One 0x0F packet: exactly three (SpO2, PR) pairs."""
    if len(samples) != 3:
        raise ValueError("a 0x0F packet carries three samples")
    return pack(STORED, bytes(v & 0xFF for pair in samples for v in pair))


def encode_stored_length(user: int, segment: int, length: int) -> bytes:
    return pack(STORED_LENGTH, bytes((user, segment)) + length.to_bytes(4, "little"))


def encode_stored_date(user: int, segment: int, year: int, month: int, day: int) -> bytes:
    return pack(STORED_DATE, bytes((user, segment, year // 100, year % 100, month, day)))


def encode_stored_time(user: int, segment: int, hour: int, minute: int, second: int) -> bytes:
    return pack(STORED_TIME, bytes((user, segment, hour, minute, second, 0)))


def encode_feedback(command_code: int | None = None, reason: int = 0) -> bytes:
    if command_code is None:
        return pack(FREE_FEEDBACK, b"")
    return pack(FEEDBACK, bytes((command_code, reason)))


def encode_segments(user: int, segments: int) -> bytes:
    return pack(SEGMENTS, bytes((user, segments)))


class Cms50V7Codec:
    """`cms50.v7`: Contec V7.0 packets (device → host, and host control commands)."""

    name = CODEC
    summary = "Contec CMS50D+ fw 4.6+/E/F V7.0 high-byte packets (115200 8N1)"
    # Live pulse-oximetry frames (up to 100 a second) are display data: the daemon stores a downloaded
    # recording as one series, never a record per frame, and replay follows the same policy.
    live_only = True

    def frames(self, stream: bytes) -> Sequence[Frame]:
        return HighByteFramer(PACKET_LENGTHS).feed(stream)

    def decode(self, frame: bytes) -> V7Packet:
        return decode_packet(frame)

    def readings(self, decoded: Any, context: ReadingContext) -> Sequence[Reading]:
        if isinstance(decoded, V7LiveData):
            return [live_reading(decoded.sample(), context, encode_live(decoded))]
        return []
