"""Current Time Service codecs: Current Time (0x2A2B, 10 bytes) and Local Time Information (0x2A0F).

The BLE driver reads Current Time to measure the device clock's skew before it writes the gateway time:
`decode_current_time(value).exact_time.wall_time` is the device's naive wall clock, and
`encode_current_time(CurrentTime.from_datetime(site_now_naive, AdjustReason.MANUAL_UPDATE))` sets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntFlag

from healthhut.drivers.codecs.base import ReadingContext, SingleFrameCodec
from healthhut.drivers.codecs.gatt_time import ExactTime256, encode_exact_time_256, read_exact_time_256
from healthhut.drivers.codecs.ieee11073 import ByteReader, uint_bytes
from healthhut.readings import Reading


class AdjustReason(IntFlag):
    NONE = 0
    MANUAL_UPDATE = 0x01
    EXTERNAL_REFERENCE_UPDATE = 0x02
    TIME_ZONE_CHANGE = 0x04
    DST_CHANGE = 0x08


@dataclass(frozen=True, slots=True)
class CurrentTime:
    """A decoded 0x2A2B value: Exact Time 256 + adjust reason (reserved bits kept)."""

    exact_time: ExactTime256
    adjust_reason: AdjustReason = AdjustReason.NONE
    surplus: bytes = b""

    @classmethod
    def from_datetime(cls, wall: datetime, reason: AdjustReason = AdjustReason.MANUAL_UPDATE) -> CurrentTime:
        """The value to write to set a device clock to the wall-clock fields of `wall`."""
        return cls(ExactTime256.from_datetime(wall), reason)

    @property
    def wall_time(self) -> datetime | None:
        """The device's naive wall clock (fractions included), or None if its date is unknown."""
        return self.exact_time.wall_time


def decode_current_time(data: bytes) -> CurrentTime:
    reader = ByteReader(data, "cts.current-time")
    exact = read_exact_time_256(reader)
    reason = AdjustReason(reader.u8("adjust reason"))
    return CurrentTime(exact, reason, reader.surplus())


def encode_current_time(value: CurrentTime) -> bytes:
    """Ten wire bytes (write with response to set the device clock)."""
    return encode_exact_time_256(value.exact_time) + uint_bytes(int(value.adjust_reason), 1, "adjust reason")


TIME_ZONE_UNKNOWN = -128
DST_OFFSET_UNKNOWN = 255


@dataclass(frozen=True, slots=True)
class LocalTimeInformation:
    """A decoded 0x2A0F value: raw time zone (sint8, 15-minute steps, -128 unknown) and DST offset
    (uint8, 15-minute steps, 255 unknown)."""

    time_zone: int
    dst_offset: int
    surplus: bytes = b""

    @classmethod
    def from_offsets(cls, standard: timedelta, dst: timedelta = timedelta(0)) -> LocalTimeInformation:
        """From the standard UTC offset and the DST shift; ValueError if not whole quarter hours."""
        quarter = timedelta(minutes=15)
        if standard % quarter or dst % quarter:
            raise ValueError("time zone and DST offsets must be whole quarter hours")
        return cls(standard // quarter, dst // quarter)

    @property
    def utc_offset(self) -> timedelta | None:
        """Standard offset from UTC, without DST; None when unknown."""
        return None if self.time_zone == TIME_ZONE_UNKNOWN else timedelta(minutes=15 * self.time_zone)

    @property
    def dst(self) -> timedelta | None:
        return None if self.dst_offset == DST_OFFSET_UNKNOWN else timedelta(minutes=15 * self.dst_offset)


def decode_local_time_information(data: bytes) -> LocalTimeInformation:
    reader = ByteReader(data, "cts.local-time")
    zone = reader.s8("time zone")
    return LocalTimeInformation(zone, reader.u8("DST offset"), reader.surplus())


def encode_local_time_information(value: LocalTimeInformation) -> bytes:
    if not -128 <= value.time_zone <= 127:
        raise ValueError(f"time zone {value.time_zone} does not fit a sint8")
    return uint_bytes(value.time_zone & 0xFF, 1, "time zone") + uint_bytes(value.dst_offset, 1, "DST offset")


class CurrentTimeCodec(SingleFrameCodec):
    name = "cts.current-time"
    summary = "Bluetooth Current Time (0x2A2B): the device clock, not a measurement"

    def decode(self, frame: bytes) -> CurrentTime:
        return decode_current_time(frame)

    def readings(self, decoded: CurrentTime, context: ReadingContext) -> list[Reading]:
        return []
