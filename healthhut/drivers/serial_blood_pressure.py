"""Blood pressure over serial: the Creative PC-300/PC-303 kiosk board (BP part of its `AA 55` protocol).

`measure()` starts a measurement and returns its Reading; `readings()` listens for results of
measurements started on the kiosk itself. Live cuff pressure is not a Reading: it goes to the optional
`on_cuff_pressure` callback for display. A BP error frame becomes a BLOOD_PRESSURE Reading whose values are
absent (MEASUREMENT_FAILED) with status flags where the code maps to one (1 cuff loose, 4/9 movement); the
reason text is `error_reason(reading)`. We chose a Reading over raising DeviceError because a failed
attempt is something staff act on (re-seat the cuff, sit still), and listening must go on after it.

Uncertain facts (reference §2.1/§8, to verify on a real unit), all configurable in `Pc300Options`:
the wired serial settings (default 115200 8N1) and where p0/p1 sit in a cuff-pressure frame
(`Pc300Layout.cuff_pressure_offset`, default frame byte 5).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from healthhut.drivers.codecs import pc300
from healthhut.drivers.codecs.base import Frame
from healthhut.drivers.codecs.framing import AA55Framer
from healthhut.drivers.serial_session import DriverContext, SerialDriver, SerialSession, Sleep
from healthhut.drivers.transport_serial import Backoff, Parity, PortOpener, SerialSettings, open_serial
from healthhut.errors import DecodeError, DeviceError
from healthhut.readings import Reading

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pc300Options:
    baudrate: int = 115200            # [?] not found in any source; the SDK talks BLE/SPP
    parity: Parity = "N"
    layout: pc300.Pc300Layout = field(default_factory=pc300.Pc300Layout)
    measurement_timeout: float = 180.0   # KRK adult timeout is 120 s; leave room for inflation
    watchdog: float | None = None        # the board is silent between measurements: no watchdog
    backoff: Backoff = field(default_factory=Backoff)


def error_reason(reading: Reading) -> str | None:
    """The board's reason for a failed measurement (from the error byte kept in `raw`), else None."""
    try:
        decoded = pc300.decode_frame(reading.raw)
    except DecodeError:
        return None
    return decoded.reason if isinstance(decoded, pc300.BpError) else None


class Pc300BloodPressure(SerialDriver):
    def __init__(self, url: str, context: DriverContext, *, options: Pc300Options | None = None,
                 on_cuff_pressure: Callable[[pc300.CuffPressure], None] | None = None,
                 sleep: Sleep = asyncio.sleep, opener: PortOpener = open_serial) -> None:
        super().__init__(url, context, sleep=sleep, opener=opener)
        self.options = options or Pc300Options()
        self.on_cuff_pressure = on_cuff_pressure

    async def _new_session(self) -> SerialSession:
        settings = SerialSettings(self.url, baudrate=self.options.baudrate, parity=self.options.parity)
        return SerialSession(settings, AA55Framer, backoff=self.options.backoff, sleep=self._sleep,
                             opener=self._opener)

    def _handle(self, frame: Frame) -> Reading | None:
        codec = pc300.Pc300Codec(self.options.layout)
        try:
            decoded = codec.decode(frame.data)
        except DecodeError:
            self.decode_errors += 1
            return None
        if isinstance(decoded, pc300.CuffPressure):
            if self.on_cuff_pressure is not None:
                self.on_cuff_pressure(decoded)
            return None
        if isinstance(decoded, pc300.BpError):
            log.info("PC-300 on %s reported BP error code %d", self.url, decoded.code)
        readings = codec.readings(decoded, self.context.reading_context())
        return readings[0] if readings else None

    async def measure(self) -> Reading:
        """Start a measurement and wait for its result (or error) Reading; stop the cuff on timeout."""
        session = await self._session(reconnect=False)
        await session.write(pc300.START_MEASUREMENT)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.measurement_timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                frames = await session.read_frames(remaining)
            except TimeoutError:
                break
            for frame in frames:
                reading = self._handle(frame)
                if reading is not None:
                    return reading
        await self.stop()
        raise DeviceError(f"PC-300 on {self.url}: no BP result within {self.options.measurement_timeout:.0f} s",
                          advice="check the cuff and the board's power; the measurement was stopped")

    async def stop(self) -> None:
        session = await self._session(reconnect=False)
        await session.write(pc300.STOP_MEASUREMENT)

    async def readings(self) -> AsyncIterator[Reading]:
        """Results and failed attempts of every measurement, until cancelled; survives unplug/replug."""
        session = await self._session(reconnect=True)
        while True:
            try:
                frames = await session.read_frames(self.options.watchdog)
            except TimeoutError:
                await session.reopen("silent past the watchdog")
                continue
            for frame in frames:
                reading = self._handle(frame)
                if reading is not None:
                    yield reading
