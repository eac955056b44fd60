"""BerryMed BCI oximeter over BLE transparent UART: 100 packets/s reduced to one Reading a second or a series.

Notifications do not align with packets, so the byte stream runs through the same resynchronising framer
as the USB-serial driver (`berrymed.bci` codec). Nothing is stored per packet: `live()` yields the latest
sample once per `every`, `series()` one OXIMETRY_SERIES Reading per window.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from healthhut.drivers.ble.base_driver import BleHealthDriver
from healthhut.drivers.ble.ble_pulse_oximeter import series_from_samples
from healthhut.drivers.ble.transport_ble import NotificationStream
from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.berrymed import ASK_SOFTWARE_VERSION, BciSample, BciVersion, decode_packet
from healthhut.drivers.codecs.framing import SyncBitFramer
from healthhut.drivers.codecs.oximeter_sample import live_reading, pulse_or_none, spo2_or_none
from healthhut.errors import DecodeError, DeviceError
from healthhut.readings import Reading

logger = logging.getLogger(__name__)

SERVICE_UUID = "49535343-fe7d-4ae5-8fa9-9fafd205e455"
NOTIFY_UUID = "49535343-1e4d-4bd9-ba61-23c647249616"
WRITE_UUID = "49535343-8841-43f4-a8d4-ecbe34729bb3"


class BleBerryMedDriver(BleHealthDriver):
    name = "ble.berrymed"
    service_uuid = SERVICE_UUID

    async def packets(self, *, within: float | None = None, stream: NotificationStream | None = None,
                      ) -> AsyncIterator[tuple[datetime, bytes, BciSample | BciVersion]]:
        """(receive time, packet bytes, decoded packet) for every whole packet; malformed ones are counted."""
        if stream is None:
            stream = await self.connection.subscribe(NOTIFY_UUID)
        framer = SyncBitFramer(5)
        while True:
            chunk = await stream.next(within)
            at = self.now()
            for frame in framer.feed(chunk):
                try:
                    yield at, frame.data, decode_packet(frame.data)
                except DecodeError as exc:
                    self.rejected_frames += 1
                    logger.debug("device %s sent a malformed BCI packet: %s", self.connection.address, exc.reason)

    async def live(self, *, count: int | None = None, within: float | None = None,
                   every: timedelta = timedelta(seconds=1)) -> AsyncIterator[Reading]:
        """The first sample of each `every` period as an SPO2 Reading (receive time)."""
        yielded, last = 0, None
        async for at, raw, packet in self.packets(within=within):
            if not isinstance(packet, BciSample) or (last is not None and at - last < every):
                continue
            last = at
            context = ReadingContext(self.identity, at, self.timezone,
                                     self.clock.skew if self.clock is not None else None)
            yield live_reading(packet.sample(), context, raw)
            yielded += 1
            if count is not None and yielded >= count:
                return

    async def series(self, *, samples: int, period: timedelta = timedelta(seconds=1),
                     within: float | None = None) -> Reading:
        """One OXIMETRY_SERIES Reading from the next `samples` packets binned in `period` slots."""
        timed: list[tuple[datetime, float | None, float | None]] = []
        async for at, _raw, packet in self.packets(within=within):
            if isinstance(packet, BciSample):
                sample = packet.sample()
                off = sample.finger_out or sample.searching
                timed.append((at, None if off else spo2_or_none(packet.spo2),
                              None if off else pulse_or_none(packet.pulse_rate)))
                if len(timed) >= samples:
                    break
        start = timed[0][0]
        slots = max(1, int((timed[-1][0] - start) / period) + 1)
        return series_from_samples(timed, start=start, period=period, slots=slots, device=self.identity,
                                   received_at=self.now())

    async def software_version(self, *, within: float = 2.0) -> str:
        """Ask `FF`; the answer is three version packets of four ASCII characters."""
        parts: list[str] = []
        stream = await self.connection.subscribe(NOTIFY_UUID)
        await self.connection.write(WRITE_UUID, ASK_SOFTWARE_VERSION, response=True)
        async for _at, _raw, packet in self.packets(within=within, stream=stream):
            if isinstance(packet, BciVersion) and packet.which == "software":
                parts.append(packet.text)
                if len(parts) == 3:
                    return "".join(parts).strip()
        raise DeviceError("no version answer", advice="check the oximeter speaks the BCI protocol")
