"""Emulated Creative PC-300 kiosk board (BP part) on a pty: start/stop echo, cuff pressure, result or error."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path

from healthhut.drivers.codecs import pc300
from healthhut.drivers.codecs.framing import AA55Framer
from healthhut.drivers.emulators.serial_pty import PtyDevice, SerialFaults

DEFAULT_RESULT = pc300.BpResult(systolic=150, mean_arterial=114, diastolic=96, pulse_rate=78,
                                irregular_heartbeat=False)


class Pc300Emulator(PtyDevice):
    """Each measurement ends with the next queued outcome: a BpResult, or an int error code."""

    baudrate = 115200   # the real wired baud rate is unknown (reference §2.1 [?])

    def __init__(self, link: Path, *, faults: SerialFaults | None = None, rate_hz: float = 200.0,
                 peak_mmhg: int = 180, step_mmhg: int = 20, krk_module: bool = False) -> None:
        super().__init__(link, faults=faults)
        self.rate_hz = rate_hz
        self.peak_mmhg = peak_mmhg
        self.step_mmhg = step_mmhg
        self.krk_module = krk_module
        self.outcomes: deque[pc300.BpResult | int] = deque()
        self.measurements = 0
        self.commands: list[tuple[int, int]] = []
        self._framer = AA55Framer()
        self._measuring: asyncio.Task[None] | None = None

    def on_plug(self) -> None:
        self._framer = AA55Framer()
        self._measuring = None

    async def on_host_bytes(self, data: bytes) -> None:
        for frame in self._framer.feed(data):
            parts = pc300.split_frame(frame.data)
            self.commands.append((parts.token, parts.kind))
            if parts.token == pc300.TOKEN_BP_CONTROL and parts.kind == pc300.BP_START:
                await self.send_frame(pc300.START_MEASUREMENT)
                self.press_start()
            elif parts.token == pc300.TOKEN_BP_CONTROL and parts.kind == pc300.BP_STOP:
                if self._measuring is not None:
                    self._measuring.cancel()
                    self._measuring = None
                await self.send_frame(pc300.STOP_MEASUREMENT)
            elif parts.token == pc300.TOKEN_DEVICE and parts.kind == 0x01:
                await self.send_frame(pc300.encode_command(pc300.TOKEN_DEVICE, 0x01, b"PC-300"))

    def press_start(self) -> None:
        """The resident presses the kiosk's start button (or the host asked)."""
        if self._measuring is None or self._measuring.done():
            self._measuring = asyncio.ensure_future(self._measure())
            self.start(self._measuring)

    async def _measure(self) -> None:
        self.measurements += 1
        outcome = self.outcomes.popleft() if self.outcomes else DEFAULT_RESULT
        period = 1.0 / self.rate_hz
        ramp = list(range(0, self.peak_mmhg + 1, self.step_mmhg))
        try:
            for i, pressure in enumerate(ramp + ramp[::-1]):
                await self.send_frame(pc300.encode_cuff_pressure(pressure, heartbeat=i > len(ramp) and i % 3 == 0))
                await asyncio.sleep(period)
            if isinstance(outcome, int):
                await self.send_frame(pc300.encode_error(outcome, self.krk_module))
            else:
                await self.send_frame(pc300.encode_result(outcome))
        except ConnectionError:
            return
