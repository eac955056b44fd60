"""Contec CMS50 generation A (19200 8O1): 5-byte "sync bit" live packets and the stored-recording upload.

No checksum: a live packet is the only byte with bit 7 set followed by four without; an upload is three
`F2 hh mm` header trios, optionally three length bytes, then one `Fx pp ss` trio per second.
Whether byte 0 bit 4 means "finger out" or "signal weak" is unsettled (reference §8 question 1); the probe
error bit of byte 2 is what marks a finger-out sample here, byte 0 bit 4 is kept as `signal_weak`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from healthhut.drivers.codecs.base import Frame, ReadingContext
from healthhut.drivers.codecs.framing import Cms50LegacyFramer
from healthhut.drivers.codecs.oximeter_sample import OximeterSample, live_reading
from healthhut.errors import DecodeError
from healthhut.readings import Reading

CODEC = "cms50.legacy"
START_LIVE = bytes.fromhex("F6F6F6")       # reset / (re)enter live streaming
REQUEST_UPLOAD = bytes.fromhex("F5F5")     # ask for the stored recording (older units)


@dataclass(frozen=True, slots=True)
class LegacyLiveData:
    beep: bool
    spo2_dropping: bool
    signal_weak: bool
    signal_strength: int
    pleth: int
    searching: bool
    probe_error: bool
    bar_graph: int
    pulse_rate: int
    spo2: int

    def sample(self) -> OximeterSample:
        return OximeterSample(self.spo2, self.pulse_rate, None,
                              finger_out=self.probe_error, searching=self.searching)


@dataclass(frozen=True, slots=True)
class LegacyUploadHeader:
    """`F2 hh mm`: recording start hour/minute; 00:00 on a CMS50D+, which has no clock."""

    hour: int
    minute: int


@dataclass(frozen=True, slots=True)
class LegacyUploadLength:
    data_bytes: int

    @property
    def records(self) -> int:
        return self.data_bytes // 3


@dataclass(frozen=True, slots=True)
class LegacyRecord:
    """One stored second."""

    pulse_rate: int
    spo2: int


LegacyPacket = LegacyLiveData | LegacyUploadHeader | LegacyUploadLength | LegacyRecord


def decode_packet(packet: bytes) -> LegacyPacket:
    """Decode one framed packet (5-byte live or 3-byte upload trio)."""
    if len(packet) not in (3, 5):
        raise DecodeError(f"a packet is 3 or 5 bytes, got {len(packet)}", offset=0, codec=CODEC)
    head = packet[0]
    if not head & 0x80:
        raise DecodeError("first byte lacks the sync bit", offset=0, codec=CODEC)
    if len(packet) == 5:
        for i in range(1, 5):
            if packet[i] & 0x80:
                raise DecodeError("sync bit inside a live packet", offset=i, codec=CODEC)
        b2 = packet[2]
        return LegacyLiveData(
            beep=bool(head & 0x40), spo2_dropping=bool(head & 0x20), signal_weak=bool(head & 0x10),
            signal_strength=head & 0x0F, pleth=packet[1], searching=bool(b2 & 0x20),
            probe_error=bool(b2 & 0x10), bar_graph=b2 & 0x0F,
            pulse_rate=(b2 & 0x40) << 1 | packet[3], spo2=packet[4])
    if not packet[1] & 0x80 or packet[2] & 0x80:
        raise DecodeError("an upload trio has bit 7 set on its first two bytes only", offset=1, codec=CODEC)
    if head == 0xF2:
        return LegacyUploadHeader(packet[1] & 0x7F, packet[2])
    if head in (0xF0, 0xF1):
        return LegacyRecord((head & 0x01) << 7 | packet[1] & 0x7F, packet[2])
    return LegacyUploadLength(((head & 0x7F) << 14 | (packet[1] & 0x7F) << 7 | packet[2]) + 1)


def encode_live(sample: LegacyLiveData) -> bytes:
    head = (0x80 | sample.beep << 6 | sample.spo2_dropping << 5 | sample.signal_weak << 4
            | sample.signal_strength & 0x0F)
    b2 = (sample.pulse_rate & 0x80) >> 1 | sample.searching << 5 | sample.probe_error << 4 | sample.bar_graph & 0x0F
    return bytes((head, sample.pleth & 0x7F, b2, sample.pulse_rate & 0x7F, sample.spo2 & 0x7F))


def encode_upload_header(hour: int = 0, minute: int = 0) -> bytes:
    return bytes((0xF2, 0x80 | hour & 0x7F, minute & 0x7F))


def encode_upload_length(records: int) -> bytes:
    value = records * 3 - 1
    return bytes((0x80 | value >> 14 & 0x7F, 0x80 | value >> 7 & 0x7F, value & 0x7F))


def encode_record(pulse_rate: int, spo2: int) -> bytes:
    return bytes((0xF0 | (pulse_rate >> 7 & 1), 0x80 | pulse_rate & 0x7F, spo2 & 0x7F))


class Cms50LegacyCodec:
    """`cms50.legacy`: Contec generation A live packets and upload trios (19200 8O1)."""

    name = CODEC
    summary = "Contec CMS50 generation A 5-byte sync-bit packets and upload trios (19200 8O1)"
    # Live pulse-oximetry frames (up to 100 a second) are display data: the daemon stores a downloaded
    # recording as one series, never a record per frame, and replay follows the same policy.
    live_only = True

    def frames(self, stream: bytes) -> Sequence[Frame]:
        return Cms50LegacyFramer().feed(stream)

    def decode(self, frame: bytes) -> LegacyPacket:
        return decode_packet(frame)

    def readings(self, decoded: Any, context: ReadingContext) -> Sequence[Reading]:
        if isinstance(decoded, LegacyLiveData):
            return [live_reading(decoded.sample(), context, encode_live(decoded))]
        return []
