"""GATT time types (Date Time, Day Date Time, Exact Time 256) and how a device timestamp becomes a Reading time.

`DeviceTime` keeps the seven raw fields so that an emulator can send any pattern (an all-zero stamp, an
impossible date) and a capture re-encodes byte for byte. Its `wall_time` is the naive device wall-clock
datetime, or None when year, month or day is 0 ("unknown") or the fields are not a real date/time.
The device clock has no zone: the site's zone is attached when a Reading is built (`reading_time`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.ieee11073 import ByteReader, uint_bytes
from healthhut.readings import TimeSource

DATE_TIME_SIZE = 7
DAY_DATE_TIME_SIZE = 8
EXACT_TIME_256_SIZE = 9


@dataclass(frozen=True, slots=True)
class DeviceTime:
    """A Date Time (0x2A08) value exactly as sent: year 0 / month 0 / day 0 mean "unknown"."""

    year: int
    month: int
    day: int
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    @classmethod
    def from_datetime(cls, wall: datetime) -> DeviceTime:
        """The wall-clock fields of `wall` (any tzinfo is ignored; sub-second parts are dropped)."""
        return cls(wall.year, wall.month, wall.day, wall.hour, wall.minute, wall.second)

    @classmethod
    def unknown(cls) -> DeviceTime:
        """The all-zero stamp devices send when their clock was never set."""
        return cls(0, 0, 0)

    @property
    def wall_time(self) -> datetime | None:
        """The naive device wall time, or None when the date is unknown or impossible."""
        if self.year == 0 or self.month == 0 or self.day == 0:
            return None
        try:
            return datetime(self.year, self.month, self.day, self.hours, self.minutes, self.seconds)
        except ValueError:
            return None

    @property
    def known(self) -> bool:
        return self.wall_time is not None


@dataclass(frozen=True, slots=True)
class DayDateTime:
    """Day Date Time (0x2A0A): Date Time + day of week (1 = Monday .. 7 = Sunday, 0 = unknown)."""

    time: DeviceTime
    day_of_week: int = 0


@dataclass(frozen=True, slots=True)
class ExactTime256:
    """Exact Time 256 (0x2A0C): Day Date Time + fractions of a second in 1/256 s."""

    time: DeviceTime
    day_of_week: int = 0
    fractions256: int = 0

    @classmethod
    def from_datetime(cls, wall: datetime) -> ExactTime256:
        """Wall-clock fields, ISO day of week and the microseconds rounded down to 1/256 s."""
        return cls(DeviceTime.from_datetime(wall), wall.isoweekday(), wall.microsecond * 256 // 1_000_000)

    @property
    def wall_time(self) -> datetime | None:
        """The naive wall time including the fractions (rounded to whole microseconds)."""
        base = self.time.wall_time
        if base is None:
            return None
        return base.replace(microsecond=min(999_999, round(self.fractions256 * 1_000_000 / 256)))


_DATE_TIME = struct.Struct("<H5B")


def read_date_time(reader: ByteReader) -> DeviceTime:
    fields = reader.unpack(_DATE_TIME)
    if fields is not None:
        return DeviceTime(*fields)
    # too short: field by field, so the DecodeError names the first field missing
    year = reader.u16("Date Time year")
    month, day, hours, minutes, seconds = (reader.u8(f"Date Time {name}")
                                           for name in ("month", "day", "hours", "minutes", "seconds"))
    return DeviceTime(year, month, day, hours, minutes, seconds)


def read_exact_time_256(reader: ByteReader) -> ExactTime256:
    time = read_date_time(reader)
    day_of_week = reader.u8("day of week")
    return ExactTime256(time, day_of_week, reader.u8("fractions256"))


def encode_date_time(value: DeviceTime | datetime) -> bytes:
    """Seven wire bytes; a datetime is sent as its wall-clock fields. ValueError if a field does not fit."""
    time = value if isinstance(value, DeviceTime) else DeviceTime.from_datetime(value)
    return (uint_bytes(time.year, 2, "year")
            + b"".join(uint_bytes(v, 1, "Date Time field")
                       for v in (time.month, time.day, time.hours, time.minutes, time.seconds)))


def decode_date_time(data: bytes) -> DeviceTime:
    """Decode a Date Time characteristic value (exactly 7 bytes)."""
    reader = ByteReader(data, "Date Time")
    time = read_date_time(reader)
    reader.end("Date Time")
    return time


def encode_day_date_time(value: DayDateTime) -> bytes:
    return encode_date_time(value.time) + uint_bytes(value.day_of_week, 1, "day of week")


def decode_day_date_time(data: bytes) -> DayDateTime:
    """Decode a Day Date Time value (exactly 8 bytes)."""
    reader = ByteReader(data, "Day Date Time")
    time = read_date_time(reader)
    value = DayDateTime(time, reader.u8("day of week"))
    reader.end("Day Date Time")
    return value


def encode_exact_time_256(value: ExactTime256) -> bytes:
    return (encode_date_time(value.time) + uint_bytes(value.day_of_week, 1, "day of week")
            + uint_bytes(value.fractions256, 1, "fractions256"))


def decode_exact_time_256(data: bytes) -> ExactTime256:
    """Decode an Exact Time 256 value (exactly 9 bytes)."""
    reader = ByteReader(data, "Exact Time 256")
    value = read_exact_time_256(reader)
    reader.end("Exact Time 256")
    return value


def reading_time(timestamp: DeviceTime | None, context: ReadingContext,
                 *, clock_not_set: bool = False) -> tuple[datetime | None, TimeSource]:
    """`measured_at` and `time_source` for a measurement carrying an optional device timestamp.

    No timestamp: the receive time (RECEIPT). A timestamp with an unknown date or from a clock the device
    says is unset: no time (UNKNOWN). Otherwise the device wall time in the site's zone (DEVICE).
    """
    if timestamp is None:
        return context.received_at, TimeSource.RECEIPT
    wall = timestamp.wall_time
    if wall is None or clock_not_set:
        return None, TimeSource.UNKNOWN
    return wall.replace(tzinfo=context.timezone), TimeSource.DEVICE
