"""BerryMed BCI protocol (USB-serial 115200 8N1 or BLE transparent UART): 5-byte sync-bit packets, 100/s.

The same bytes arrive over USB and BLE, so both transports share this codec. Version answers to the
single-byte `FF`/`FE` commands are 5-byte packets too: `FF`/`FE` followed by four ASCII characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from healthhut.drivers.codecs.base import Frame, ReadingContext
from healthhut.drivers.codecs.framing import SyncBitFramer
from healthhut.drivers.codecs.oximeter_sample import OximeterSample, live_reading
from healthhut.errors import DecodeError
from healthhut.readings import Reading

CODEC = "berrymed.bci"
ASK_SOFTWARE_VERSION = b"\xff"
ASK_HARDWARE_VERSION = b"\xfe"


@dataclass(frozen=True, slots=True)
class BciSample:
    beep: bool
    probe_unplugged: bool
    no_signal: bool
    signal_strength: int     # 0..8; 15 = invalid
    pleth: int               # 1..100; 0 = invalid
    searching: bool
    no_finger: bool
    bar_graph: int           # 1..15; 0 = invalid
    pulse_rate: int          # 25..250; 0xFF = invalid
    spo2: int                # 35..100; 0x7F = invalid

    def sample(self) -> OximeterSample:
        return OximeterSample(self.spo2, self.pulse_rate, None,
                              finger_out=self.no_finger or self.probe_unplugged, searching=self.searching)


@dataclass(frozen=True, slots=True)
class BciVersion:
    which: str               # "software" or "hardware"
    text: str


def _is_version(packet: bytes) -> bool:
    return packet[0] in (0xFF, 0xFE) and all(0x20 <= b < 0x7F for b in packet[1:])


def decode_packet(packet: bytes) -> BciSample | BciVersion:
    if len(packet) != 5:
        raise DecodeError(f"a BCI packet is 5 bytes, got {len(packet)}", offset=0, codec=CODEC)
    if not packet[0] & 0x80:
        raise DecodeError("first byte lacks the sync bit", offset=0, codec=CODEC)
    for i in range(1, 5):
        if packet[i] & 0x80:
            raise DecodeError("sync bit inside a packet", offset=i, codec=CODEC)
    if _is_version(packet):
        return BciVersion("software" if packet[0] == 0xFF else "hardware", packet[1:].decode("ascii"))
    b0, b2 = packet[0], packet[2]
    return BciSample(
        beep=bool(b0 & 0x40), probe_unplugged=bool(b0 & 0x20), no_signal=bool(b0 & 0x10),
        signal_strength=b0 & 0x0F, pleth=packet[1], searching=bool(b2 & 0x20), no_finger=bool(b2 & 0x10),
        bar_graph=b2 & 0x0F, pulse_rate=(b2 & 0x40) << 1 | packet[3], spo2=packet[4])


def encode_sample(sample: BciSample) -> bytes:
    b0 = 0x80 | sample.beep << 6 | sample.probe_unplugged << 5 | sample.no_signal << 4 | sample.signal_strength & 0x0F
    b2 = (sample.pulse_rate & 0x80) >> 1 | sample.searching << 5 | sample.no_finger << 4 | sample.bar_graph & 0x0F
    return bytes((b0, sample.pleth & 0x7F, b2, sample.pulse_rate & 0x7F, sample.spo2 & 0x7F))


def encode_version(which: str, text: str) -> bytes:
    raw = text.encode("ascii")[:4].ljust(4, b" ")
    return bytes((0xFF if which == "software" else 0xFE,)) + raw


class BerrymedBciCodec:
    """`berrymed.bci`: BerryMed BCI 5-byte packets (USB-serial and BLE)."""

    name = CODEC
    summary = "BerryMed BCI 5-byte sync-bit oximeter packets (USB 115200 8N1 or BLE)"
    # Live pulse-oximetry frames (up to 100 a second) are display data: the daemon stores a downloaded
    # recording as one series, never a record per frame, and replay follows the same policy.
    live_only = True

    def frames(self, stream: bytes) -> Sequence[Frame]:
        return SyncBitFramer(5).feed(stream)

    def decode(self, frame: bytes) -> BciSample | BciVersion:
        return decode_packet(frame)

    def readings(self, decoded: Any, context: ReadingContext) -> Sequence[Reading]:
        if isinstance(decoded, BciSample):
            return [live_reading(decoded.sample(), context, encode_sample(decoded))]
        return []
