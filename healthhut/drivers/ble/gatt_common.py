"""What every BLE health driver does on connect: identify the device, check its clock, download stored records.

Stored records follow one rule: a record's sequence number becomes the device's high-water mark only after
the caller's `commit` coroutine has returned for it, so a download cut off after N of M records resumes
from N + 1 and never hands the store a record twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

from healthhut.drivers.ble.transport_ble import BleConnection, NotificationStream
from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.current_time import CurrentTime, decode_current_time, encode_current_time
from healthhut.drivers.codecs.device_info import decode_battery_level, decode_dis_string, decode_system_id
from healthhut.drivers.codecs.racp import (
    RacpNumberOfRecords,
    RacpRequest,
    RacpResponseCode,
    RacpResponseValue,
    abort_operation,
    decode_racp,
    encode_racp,
    report_number_of_all_records,
)
from healthhut.errors import DecodeError, DeviceError
from healthhut.readings import DeviceIdentity, Reading, Transport

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Commit = Callable[[Reading], Awaitable[None]]
RACP_UUID = "2a52"
CURRENT_TIME_UUID = "2a2b"
BATTERY_UUID = "2a19"
_DIS = {"manufacturer": "2a29", "model": "2a24", "serial": "2a25", "firmware": "2a26", "hardware": "2a27",
        "software": "2a28"}


def utc_now() -> datetime:
    return datetime.now(UTC)


class WatermarkStore(Protocol):
    """Where a device's stored-record high-water mark lives (the records room keeps it in SQLite)."""

    async def load(self, device_key: str) -> int | None: ...

    async def save(self, device_key: str, sequence: int) -> None: ...


@dataclass
class MemoryWatermarks:
    """A WatermarkStore in memory (tests, the diagnostics CLI)."""

    marks: dict[str, int] = field(default_factory=dict)

    async def load(self, device_key: str) -> int | None:
        return self.marks.get(device_key)

    async def save(self, device_key: str, sequence: int) -> None:
        self.marks[device_key] = sequence


async def optional_read(connection: BleConnection, uuid: str) -> bytes | None:
    """A read that may fail without ending the session (a refused DIS read); a dropped link still raises."""
    if not connection.has(uuid):
        return None
    try:
        return await connection.read(uuid)
    except DeviceError as exc:
        if connection.disconnected.is_set():
            raise
        logger.warning("device %s refused to read %s: %s", connection.address, uuid, exc.message)
        return None


async def read_identity(connection: BleConnection) -> DeviceIdentity:
    """DIS strings and System ID; absent, refused or undecodable characteristics are left empty, not fatal."""
    values: dict[str, str | None] = {}
    for name, uuid in _DIS.items():
        values[name] = None
        raw = await optional_read(connection, uuid)
        if raw is not None:
            try:
                values[name] = decode_dis_string(raw) or None
            except DecodeError:
                logger.warning("device %s sent an undecodable %s", connection.address, name)
    system_id = None
    raw_id = await optional_read(connection, "2a23")
    if raw_id is not None:
        try:
            system_id = decode_system_id(raw_id)
        except DecodeError:
            logger.warning("device %s sent an undecodable system id", connection.address)
    return DeviceIdentity(transport=Transport.BLE, address=connection.address, name=connection.name,
                          system_id=system_id, **values)


async def read_battery(connection: BleConnection) -> int | None:
    raw = await optional_read(connection, BATTERY_UUID)
    if raw is None:
        return None
    try:
        return decode_battery_level(raw)
    except DecodeError:
        return None


@dataclass(frozen=True, slots=True)
class ClockCheck:
    """The device clock as read on this connection. `skew` = gateway − device; None when unknown."""

    device_time: datetime | None      # aware, in the site's zone; None = clock unset / no CTS
    skew: timedelta | None
    present: bool                     # the device has a Current Time characteristic
    writable: bool
    set_to: datetime | None = None    # the gateway time written, if the clock was set


async def check_clock(connection: BleConnection, *, timezone: tzinfo, now: Clock = utc_now,
                      set_time: bool = True) -> ClockCheck:
    """Read Current Time → skew (before touching the clock), then write the gateway time if allowed."""
    if not connection.has(CURRENT_TIME_UUID):
        return ClockCheck(None, None, present=False, writable=False)
    writable = "write" in connection.properties(CURRENT_TIME_UUID)
    gateway_now = now()
    raw = await optional_read(connection, CURRENT_TIME_UUID)
    try:
        wall = decode_current_time(raw).wall_time if raw is not None else None
    except DecodeError:
        logger.warning("device %s sent an undecodable current time", connection.address)
        wall = None
    device_time = wall.replace(tzinfo=timezone) if wall is not None else None
    skew = gateway_now - device_time if device_time is not None else None
    set_to = None
    if set_time and writable:
        target = now().astimezone(timezone)
        try:
            await connection.write(CURRENT_TIME_UUID,
                                   encode_current_time(CurrentTime.from_datetime(target.replace(tzinfo=None))))
            set_to = target
        except DeviceError as exc:
            logger.warning("device %s refused the clock write: %s", connection.address, exc.message)
    return ClockCheck(device_time, skew, present=True, writable=writable, set_to=set_to)


def reading_context(identity: DeviceIdentity, clock: ClockCheck | None, *, timezone: tzinfo,
                    now: Clock = utc_now) -> ReadingContext:
    return ReadingContext(device=identity, received_at=now(), timezone=timezone,
                          clock_skew=clock.skew if clock is not None else None)


@dataclass
class DownloadResult:
    """What one stored-record download did. `complete` is False when it was cut short."""

    requested_from: int | None
    committed: int = 0
    skipped_duplicates: int = 0
    rejected: int = 0
    high_water_mark: int | None = None
    complete: bool = False
    response: RacpResponseValue | None = None
    error: DeviceError | None = None


class RacpSession:
    """One RACP procedure at a time on a connection whose RACP and record characteristics are subscribed."""

    def __init__(self, connection: BleConnection, control: NotificationStream, *, timeout: float = 30.0) -> None:
        self.connection = connection
        self.control = control
        self.timeout = timeout

    async def request(self, request: RacpRequest) -> None:
        await self.connection.write(RACP_UUID, encode_racp(request), response=True)

    async def count(self) -> int:
        await self.request(report_number_of_all_records())
        answer = decode_racp(await self.control.next(self.timeout))
        if isinstance(answer, RacpNumberOfRecords):
            return answer.count
        raise DeviceError("the device did not report its number of stored records",
                          advice="power-cycle the device and try again")

    async def abort(self) -> None:
        try:
            await self.request(abort_operation())
        except DeviceError:
            logger.debug("RACP abort not delivered to %s", self.connection.address)


def racp_outcome(frame: bytes) -> RacpResponseCode | None:
    """The response code carried by an RACP indication, or None for anything else."""
    try:
        message = decode_racp(frame)
    except DecodeError:
        return None
    return message if isinstance(message, RacpResponseCode) else None
