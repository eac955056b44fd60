"""Emulated BerryMed BCI oximeter on a pty (USB version, 115200 8N1): 5-byte packets unasked, versions on FF/FE."""

from __future__ import annotations

from pathlib import Path

from healthhut.drivers.codecs import berrymed
from healthhut.drivers.emulators.serial_cms50 import OximeterScript
from healthhut.drivers.emulators.serial_pty import PtyDevice, SerialFaults


class BerrymedBciEmulator(PtyDevice):
    baudrate = 115200

    def __init__(self, link: Path, *, script: OximeterScript | None = None, faults: SerialFaults | None = None,
                 rate_hz: float = 100.0, software: str = "V1.4", hardware: str = "H2.0") -> None:
        super().__init__(link, faults=faults)
        self.script = script or OximeterScript()
        self.rate_hz = rate_hz
        self.software = software
        self.hardware = hardware
        self.live_index = 0

    def on_plug(self) -> None:
        self.start(self.send_paced(self.rate_hz, self._send_live))

    def live_sample(self, index: int) -> berrymed.BciSample:
        s = self.script
        if s.finger_is_out(index):
            return berrymed.BciSample(False, False, True, 15, 0, False, True, 0, 0xFF, 0x7F)
        return berrymed.BciSample(index % 100 == 0, False, False, 7, 1 + index % 100, s.is_searching(index),
                                  False, 9, s.pulse_rate, s.spo2)

    async def on_host_bytes(self, data: bytes) -> None:
        for byte in data:
            if byte == 0xFF:
                for part in range(3):   # the software version comes as three 5-byte answers
                    text = self.software[part * 4:part * 4 + 4] or "    "
                    await self.send_frame(berrymed.encode_version("software", text))
            elif byte == 0xFE:
                await self.send_frame(berrymed.encode_version("hardware", self.hardware))

    async def _send_live(self) -> None:
        await self.send_frame(berrymed.encode_sample(self.live_sample(self.live_index)))
        self.live_index += 1
