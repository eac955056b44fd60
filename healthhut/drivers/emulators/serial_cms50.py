"""Emulated Contec CMS50 oximeters on a pty: generation B (V7.0, 115200) and generation A (19200 8O1).

Both speak the bytes of the codecs' encode side: live samples at a configurable rate with finger-out
periods, and a stored recording that the host downloads. V7 stops live output when no keep-alive (0xAF)
arrives for `keepalive_timeout` seconds, as a CMS50D+ v4.6 does after about 30 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from healthhut.drivers.codecs import cms50_legacy as legacy
from healthhut.drivers.codecs import cms50_v7 as v7
from healthhut.drivers.codecs.framing import HighByteFramer
from healthhut.drivers.emulators.serial_pty import PtyDevice, SerialFaults


@dataclass
class OximeterScript:
    """What the emulated finger shows: values, finger-out sample ranges, and a stored recording."""

    spo2: int = 97
    pulse_rate: int = 72
    finger_out: Sequence[range] = ()          # live sample indices with the finger out
    searching: Sequence[range] = ()
    recording: Sequence[tuple[int, int]] = field(default_factory=list)   # (SpO2, PR) per second, raw codes
    recording_start: datetime | None = None   # None: a unit without a clock

    def finger_is_out(self, index: int) -> bool:
        return any(index in r for r in self.finger_out)

    def is_searching(self, index: int) -> bool:
        return any(index in r for r in self.searching)


class Cms50V7Emulator(PtyDevice):
    """A CMS50D+ v4.6 / CMS50E/F speaking the V7.0 protocol."""

    baudrate = 115200

    def __init__(self, link: Path, *, script: OximeterScript | None = None, faults: SerialFaults | None = None,
                 rate_hz: float = 60.0, keepalive_timeout: float = 30.0) -> None:
        super().__init__(link, faults=faults)
        self.script = script or OximeterScript()
        self.rate_hz = rate_hz
        self.keepalive_timeout = keepalive_timeout
        self.commands: list[int] = []
        self.live_index = 0
        self._framer = HighByteFramer(v7.PACKET_LENGTHS)
        self._live: asyncio.Task[None] | None = None
        self._last_keepalive = 0.0

    def on_plug(self) -> None:
        self._framer = HighByteFramer(v7.PACKET_LENGTHS)
        self._live = None

    def live_sample(self, index: int) -> v7.V7LiveData:
        s = self.script
        if s.finger_is_out(index):
            return v7.V7LiveData(0, False, False, False, True, 0x40, False, 0, True, 0xFF, 0x7F, 0xFFFF)
        beep = index % 50 == 0
        pleth = 40 + (index * 7) % 60
        return v7.V7LiveData(6, False, False, beep, False, pleth, s.is_searching(index), 7, False,
                             s.pulse_rate, s.spo2, 125)

    async def on_host_bytes(self, data: bytes) -> None:
        for frame in self._framer.feed(data):
            decoded = v7.decode_packet(frame.data)
            if isinstance(decoded, v7.V7Command):
                self.commands.append(decoded.command)
                await self._answer(decoded.command, decoded.args)

    async def _answer(self, code: int, args: bytes) -> None:
        loop = asyncio.get_running_loop()
        script = self.script
        if code == v7.CMD_START_LIVE:
            self._last_keepalive = loop.time()
            if self._live is None or self._live.done():
                self._live = asyncio.ensure_future(self.send_paced(self.rate_hz, self._send_live,
                                                                   self._keepalive_fresh))
                self.start(self._live)
        elif code == v7.CMD_STOP_LIVE:
            self._stop_live()
            await self.send_frame(v7.encode_feedback())
        elif code == v7.CMD_STOP_STORED:
            await self.send_frame(v7.encode_feedback())
        elif code == v7.CMD_KEEP_ALIVE:
            self._last_keepalive = loop.time()
        elif code == v7.CMD_SEGMENTS:
            await self.send_frame(v7.encode_segments(args[0], 1 if script.recording else 0))
        elif code == v7.CMD_LENGTH:
            await self.send_frame(v7.encode_stored_length(args[0], args[1], len(script.recording) * 2))
        elif code == v7.CMD_START_TIME:
            start = script.recording_start
            if start is None:
                await self.send_frame(v7.encode_stored_date(args[0], args[1], 0, 0, 0))
                await self.send_frame(v7.encode_stored_time(args[0], args[1], 0, 0, 0))
            else:
                await self.send_frame(v7.encode_stored_date(args[0], args[1], start.year, start.month, start.day))
                await self.send_frame(v7.encode_stored_time(args[0], args[1], start.hour, start.minute,
                                                            start.second))
        elif code == v7.CMD_SEND_STORED:
            self._stop_live()
            self.start(self._stream_recording())
        else:
            await self.send_frame(v7.encode_feedback(code, 0x05))

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.cancel()
            self._live = None

    def _keepalive_fresh(self) -> bool:
        return asyncio.get_running_loop().time() - self._last_keepalive < self.keepalive_timeout

    async def _send_live(self) -> None:
        await self.send_frame(v7.encode_live(self.live_sample(self.live_index)))
        self.live_index += 1

    async def _stream_recording(self) -> None:
        samples = list(self.script.recording)
        while len(samples) % 3:
            samples.append((0x7F, 0xFF))   # the last packet is padded with invalid pairs
        try:
            for i in range(0, len(samples), 3):
                await self.send_frame(v7.encode_stored_samples(samples[i:i + 3]))
                if i % 300 == 0:
                    await asyncio.sleep(0)
        except ConnectionError:
            return


class Cms50LegacyEmulator(PtyDevice):
    """An older CMS50D+/E (generation A): streams live packets unasked; uploads on `F5 F5`."""

    baudrate = 19200

    def __init__(self, link: Path, *, script: OximeterScript | None = None, faults: SerialFaults | None = None,
                 rate_hz: float = 60.0, send_length: bool = True) -> None:
        super().__init__(link, faults=faults)
        self.script = script or OximeterScript()
        self.rate_hz = rate_hz
        self.send_length = send_length
        self.live_index = 0
        self.uploads = 0
        self._uploading = False
        self._pending = bytearray()
        self._live: asyncio.Task[None] | None = None

    def on_plug(self) -> None:
        self._pending.clear()
        self._start_live()

    def _start_live(self) -> None:
        if self._live is None or self._live.done():
            self._live = asyncio.ensure_future(self.send_paced(self.rate_hz, self._send_live))
            self.start(self._live)

    def live_sample(self, index: int) -> legacy.LegacyLiveData:
        s = self.script
        if s.finger_is_out(index):
            return legacy.LegacyLiveData(False, False, True, 0, 0, False, True, 0, 0, 0)
        return legacy.LegacyLiveData(index % 60 == 0, False, False, 4, 30 + index % 50, s.is_searching(index),
                                     False, 5, s.pulse_rate, s.spo2)

    async def on_host_bytes(self, data: bytes) -> None:
        self._pending += data
        if legacy.START_LIVE in self._pending:
            self._pending.clear()
            self._start_live()
        elif legacy.REQUEST_UPLOAD in self._pending:
            self._pending.clear()
            if self._uploading:
                return
            if self._live is not None:
                self._live.cancel()
                self._live = None
            self.start(self._upload())
        del self._pending[:-3]

    async def _send_live(self) -> None:
        await self.send_frame(legacy.encode_live(self.live_sample(self.live_index)))
        self.live_index += 1

    async def _upload(self) -> None:
        self.uploads += 1
        self._uploading = True
        start = self.script.recording_start
        hour, minute = (start.hour, start.minute) if start is not None else (0, 0)
        try:
            for _ in range(3):
                await self.send_frame(legacy.encode_upload_header(hour, minute))
            if self.send_length:
                await self.send_frame(legacy.encode_upload_length(len(self.script.recording)))
            for i, (spo2, pulse) in enumerate(self.script.recording):
                await self.send_frame(legacy.encode_record(pulse, spo2))
                if i % 300 == 0:
                    await asyncio.sleep(0)
        except ConnectionError:
            return
        finally:
            self._uploading = False
