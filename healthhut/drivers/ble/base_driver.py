"""The part every standard-profile BLE driver shares: start-up (identity, battery, clock) and live readings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import tzinfo
from typing import TypeVar

from healthhut.drivers.ble.gatt_common import (
    Clock,
    ClockCheck,
    check_clock,
    read_battery,
    read_identity,
    reading_context,
    utc_now,
)
from healthhut.drivers.ble.transport_ble import BleConnection
from healthhut.drivers.codecs.base import Codec
from healthhut.errors import DecodeError
from healthhut.readings import DeviceIdentity, Reading, Transport

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BleHealthDriver:
    """One connected device. Call `start()` first: it reads identity, battery and clock (and sets the clock).

    Subclasses name their service and the characteristics `live()` listens to: a codec per UUID, or None
    for display-only characteristics (intermediate cuff pressure, intermediate temperature).
    """

    name = "ble.base"
    service_uuid = ""
    live_characteristics: Mapping[str, Codec | None] = {}

    def __init__(self, connection: BleConnection, *, timezone: tzinfo, now: Clock = utc_now,
                 record_timeout: float = 30.0) -> None:
        self.connection = connection
        self.timezone = timezone
        self.now = now
        self.record_timeout = record_timeout
        self.identity = DeviceIdentity(transport=Transport.BLE, address=connection.address,
                                       name=connection.name)
        self.clock: ClockCheck | None = None
        self.battery: int | None = None
        self.rejected_frames = 0
        # Display-only values (live cuff pressure, intermediate temperature) go here, if anyone shows them.
        self.on_display: Callable[[str, bytes], None] | None = None

    async def start(self, *, set_clock: bool = True) -> None:
        self.identity = await read_identity(self.connection)
        self.battery = await read_battery(self.connection)
        self.clock = await check_clock(self.connection, timezone=self.timezone, now=self.now, set_time=set_clock)

    async def read_feature(self, uuid: str, decode: Callable[[bytes], T]) -> T | None:
        """A feature characteristic, decoded; None when the device lacks it or sends it malformed."""
        if not self.connection.has(uuid):
            return None
        try:
            return decode(await self.connection.read(uuid))
        except DecodeError:
            return None

    def decode_readings(self, codec: Codec, frame: bytes) -> list[Reading]:
        """Readings for one frame; a malformed frame is counted and logged (reason only), never raised."""
        try:
            decoded = codec.decode(frame)
        except DecodeError as exc:
            self.rejected_frames += 1
            logger.warning("device %s sent a malformed %s frame: %s", self.connection.address, codec.name,
                           exc.reason)
            return []
        context = reading_context(self.identity, self.clock, timezone=self.timezone, now=self.now)
        return list(codec.readings(decoded, context))

    async def live(self, *, count: int | None = None, within: float | None = None) -> AsyncIterator[Reading]:
        """Readings as the device sends them, until `count` (forever if None); DeviceError on disconnect."""
        uuids = [u for u in self.live_characteristics if self.connection.has(u)]
        stream = await self.connection.subscribe(*uuids)
        yielded = 0
        while count is None or yielded < count:
            uuid, frame = await stream.next_tagged(within)
            codec = self.live_characteristics.get(uuid)
            if codec is None:
                if self.on_display is not None:
                    self.on_display(uuid, frame)
                continue  # display-only value: never a Reading
            for reading in self.decode_readings(codec, frame):
                yield reading
                yielded += 1
