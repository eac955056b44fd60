"""Serial pulse-oximeter drivers: Contec CMS50 (V7.0 and generation A, detected or configured) and BerryMed BCI.

Readings policy: live samples (60-100 per second) are for display. The drivers reduce them to one SPO2
Reading per `live_interval` (the newest sample, plus an immediate Reading whenever finger-out/searching
changes) and those are not meant to be stored one per sample; the gateway keeps at most a spot value. What
is stored is a downloaded recording: one OXIMETRY_SERIES Reading, 1 sample per second, `None` for invalid
seconds, timed by the device's start time (a re-download gives the same start, hence the same record).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from healthhut.drivers.codecs import berrymed, cms50_legacy, cms50_v7
from healthhut.drivers.codecs.base import Codec, Frame
from healthhut.drivers.codecs.framing import Cms50LegacyFramer, HighByteFramer, IncrementalFramer, SyncBitFramer
from healthhut.drivers.codecs.oximeter_sample import (
    device_start,
    pulse_or_none,
    series_reading,
    spo2_or_none,
    start_from_hour_minute,
    trim_padding,
)
from healthhut.drivers.serial_session import DriverContext, SerialDriver, SerialSession, Sleep, count_frames
from healthhut.drivers.transport_serial import Backoff, PortOpener, SerialSettings, open_serial
from healthhut.errors import DecodeError, DeviceError
from healthhut.readings import Reading, StatusFlag

log = logging.getLogger(__name__)


class Cms50Generation(StrEnum):
    V7 = "cms50.v7"          # 115200 8N1, high-byte packets, commands, keep-alive
    LEGACY = "cms50.legacy"  # 19200 8O1, sync-bit packets, streams unasked


@dataclass(frozen=True, slots=True)
class OximeterOptions:
    live_interval: float = 1.0        # seconds between live Readings; 0 = one per packet
    keepalive_every: float = 5.0      # V7 0xAF; a CMS50D+ v4.6 stops after ~30 s without it
    detect_timeout: float = 1.5       # per generation while detecting
    detect_frames: int = 3            # live packets needed to accept a generation (noise can fake one)
    watchdog: float = 5.0             # no bytes for this long: reopen the port
    request_timeout: float = 1.0      # V7: the vendor says treat the link as lost after 1 s
    silence_timeout: float = 2.0      # a download ends after this much silence
    upload_wait: float = 60.0         # legacy: how long staff have to pick "upload" on the unit
    upload_request_every: float = 0.5
    sample_period: timedelta = timedelta(seconds=1)
    stored_length_per_second: int = 2    # V7 0x08 length units per stored second: OSCAR uses 2, 4 on CMS50I/H [?]
    backoff: Backoff = field(default_factory=Backoff)


def _settings(url: str, generation: Cms50Generation) -> SerialSettings:
    if generation is Cms50Generation.V7:
        return SerialSettings(url, baudrate=115200, parity="N")
    return SerialSettings(url, baudrate=19200, parity="O")


class LiveOximeter(SerialDriver):
    """Common live loop: frames → decode → live Readings, throttled; reopen on loss or silence."""

    def __init__(self, url: str, context: DriverContext, *, options: OximeterOptions | None = None,
                 sleep: Sleep = asyncio.sleep, opener: PortOpener = open_serial) -> None:
        super().__init__(url, context, sleep=sleep, opener=opener)
        self.options = options or OximeterOptions()

    # subclass hooks
    def _codec(self) -> Codec:
        raise NotImplementedError

    def _framer(self) -> IncrementalFramer:
        raise NotImplementedError

    async def _settings(self) -> SerialSettings:
        raise NotImplementedError

    async def _start_live(self, session: SerialSession) -> None:
        """Ask the device to stream (no-op for devices that stream unasked)."""

    async def _tick(self, session: SerialSession) -> None:
        """Called after every chunk (keep-alives)."""

    async def _new_session(self) -> SerialSession:
        return SerialSession(await self._settings(), self._framer, backoff=self.options.backoff,
                             sleep=self._sleep, opener=self._opener)

    def decode(self, frame: Frame) -> Any:
        try:
            return self._codec().decode(frame.data)
        except DecodeError:
            self.decode_errors += 1
            return None

    async def readings(self) -> AsyncIterator[Reading]:
        """Live SPO2 Readings until cancelled; survives unplug/replug and silent devices."""
        session = await self._session(reconnect=True, on_reopen=self._start_live)
        await self._start_live(session)
        codec = self._codec()
        last_at: datetime | None = None
        last_status: frozenset[StatusFlag] | None = None
        interval = timedelta(seconds=self.options.live_interval)
        while True:
            try:
                frames = await session.read_frames(self.options.watchdog)
            except TimeoutError:
                await session.reopen(f"no data for {self.options.watchdog:.0f} s")
                continue
            for frame in frames:
                decoded = self.decode(frame)
                if decoded is None:
                    continue
                for reading in codec.readings(decoded, self.context.reading_context()):
                    due = (last_at is None or reading.status != last_status
                           or reading.received_at - last_at >= interval)
                    if due:
                        last_at, last_status = reading.received_at, reading.status
                        yield reading
            try:
                await self._tick(session)
            except DeviceError:   # the port just went away: the next read notices and reopens it
                log.debug("serial port %s: keep-alive not sent", self.url)


class Cms50Oximeter(LiveOximeter):
    """A Contec CMS50D+/E/F: live readings, keep-alive, and download of the stored recording."""

    def __init__(self, url: str, context: DriverContext, *, generation: Cms50Generation | None = None,
                 options: OximeterOptions | None = None, sleep: Sleep = asyncio.sleep,
                 opener: PortOpener = open_serial, monotonic: Callable[[], float] | None = None) -> None:
        super().__init__(url, context, options=options, sleep=sleep, opener=opener)
        self.generation = generation
        self._monotonic = monotonic
        self._keepalive_at = 0.0
        self._backlog: deque[Frame] = deque()

    def _now(self) -> float:
        return self._monotonic() if self._monotonic is not None else asyncio.get_running_loop().time()

    def _codec(self) -> Codec:
        if self.generation is Cms50Generation.V7:
            return cms50_v7.Cms50V7Codec()
        return cms50_legacy.Cms50LegacyCodec()

    def _framer(self) -> IncrementalFramer:
        if self.generation is Cms50Generation.V7:
            return HighByteFramer(cms50_v7.PACKET_LENGTHS)
        return Cms50LegacyFramer()

    async def _settings(self) -> SerialSettings:
        if self.generation is None:
            self.generation = await self.detect_generation()
        return _settings(self.url, self.generation)

    async def _start_live(self, session: SerialSession) -> None:
        if self.generation is Cms50Generation.V7:
            for code in (cms50_v7.CMD_STOP_STORED, cms50_v7.CMD_START_LIVE):
                await session.write(cms50_v7.command(code))
            self._keepalive_at = self._now()
        else:
            await session.write(cms50_legacy.START_LIVE)

    async def _tick(self, session: SerialSession) -> None:
        if self.generation is Cms50Generation.V7 and self._now() - self._keepalive_at >= self.options.keepalive_every:
            self._keepalive_at = self._now()
            await session.write(cms50_v7.command(cms50_v7.CMD_KEEP_ALIVE))

    async def detect_generation(self) -> Cms50Generation:
        """Try V7 at 115200 8N1 (asking for live data), then generation A at 19200 8O1 (reference §1.1)."""
        probes = {
            Cms50Generation.V7: (b"".join(cms50_v7.command(c) for c in (cms50_v7.CMD_STOP_STORED,
                                 cms50_v7.CMD_STOP_LIVE, cms50_v7.CMD_START_LIVE)),
                                 lambda: HighByteFramer(cms50_v7.PACKET_LENGTHS), cms50_v7.decode_packet,
                                 cms50_v7.V7LiveData),
            Cms50Generation.LEGACY: (cms50_legacy.START_LIVE, Cms50LegacyFramer, cms50_legacy.decode_packet,
                                     cms50_legacy.LegacyLiveData),
        }
        for generation, (probe, make_framer, decode, live_type) in probes.items():
            port = await self._opener(_settings(self.url, generation))
            try:
                await port.write(probe)
                seen = await count_frames(port, make_framer(), decode, live_type,
                                          within=self.options.detect_timeout, needed=self.options.detect_frames)
                if seen >= self.options.detect_frames:
                    log.info("serial port %s speaks %s", self.url, generation.value)
                    if generation is Cms50Generation.V7:
                        await port.write(cms50_v7.command(cms50_v7.CMD_STOP_LIVE))
                    return generation
            finally:
                await port.close()
        raise DeviceError(f"no CMS50 answered on {self.url} at 115200 8N1 or 19200 8O1",
                          advice="switch the oximeter on, put a finger in, or configure its generation",
                          transient=True)

    async def download_recording(self) -> Reading | None:
        """The stored recording as one OXIMETRY_SERIES Reading; None when the unit holds none.

        A lost port during a download raises DeviceError (no silent partial series); re-running the download
        is safe because the series keeps the device's start time.
        """
        if self.generation is None:
            self.generation = await self.detect_generation()
        session = await self._session(reconnect=False)
        self._backlog.clear()
        try:
            if self.generation is Cms50Generation.V7:
                return await self._download_v7(session)
            return await self._download_legacy(session)
        finally:
            await self.close()

    async def _request(self, session: SerialSession, request: bytes, wanted: type) -> Any:
        """Send `request` and wait for a packet of type `wanted`; packets after it wait in the backlog."""
        if request:
            await session.write(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.request_timeout
        while True:
            while self._backlog:
                decoded = self.decode(self._backlog.popleft())
                if isinstance(decoded, wanted):
                    return decoded
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                self._backlog.extend(await session.read_frames(remaining))
            except TimeoutError:
                break
        raise DeviceError(f"serial port {self.url}: no answer to a {wanted.__name__} request",
                          advice="the oximeter may be busy or switched off")

    async def _download_v7(self, session: SerialSession) -> Reading | None:
        v7 = cms50_v7
        await session.write(v7.command(v7.CMD_STOP_STORED) + v7.command(v7.CMD_STOP_LIVE))
        segments = await self._request(session, v7.command(v7.CMD_SEGMENTS, 0), v7.V7Segments)
        if segments.segments == 0:
            return None
        length = await self._request(session, v7.command(v7.CMD_LENGTH, 0, 0), v7.V7StoredLength)
        day = await self._request(session, v7.command(v7.CMD_START_TIME, 0, 0), v7.V7StoredDate)
        clock = await self._request(session, b"", v7.V7StoredTime)
        await session.write(v7.command(v7.CMD_SEND_STORED, 0, 0))
        spo2: list[float | None] = []
        pulse: list[float | None] = []
        for decoded in await self._collect_until_silence(session):
            if isinstance(decoded, v7.V7StoredSamples):
                for sample in decoded.samples:
                    gap = sample.pulse_rate == 0xFF   # OSCAR: a pair with PR 0xFF is a gap
                    spo2.append(None if gap else spo2_or_none(sample.spo2))
                    pulse.append(None if gap else pulse_or_none(sample.pulse_rate))
        await session.write(v7.command(v7.CMD_STOP_STORED))
        trim_padding(spo2, pulse, length.length // self.options.stored_length_per_second)
        start = device_start(day.year, day.month, day.day, clock.hour, clock.minute, clock.second,
                             self.context.timezone)
        log.info("serial port %s: downloaded %d stored samples", self.url, len(spo2))
        return series_reading(spo2=spo2, pulse_rate=pulse, start=start, period=self.options.sample_period,
                              context=self.context.reading_context())

    async def _collect_until_silence(self, session: SerialSession) -> list[Any]:
        out: list[Any] = [d for d in map(self.decode, self._backlog) if d is not None]
        self._backlog.clear()
        while True:
            try:
                frames = await session.read_frames(self.options.silence_timeout)
            except TimeoutError:
                return out
            out.extend(d for d in map(self.decode, frames) if d is not None)

    async def _download_legacy(self, session: SerialSession) -> Reading | None:
        lg = cms50_legacy
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.options.upload_wait
        started = False
        headers: list[tuple[int, int]] = []
        records: list[cms50_legacy.LegacyRecord] = []
        next_request = loop.time()
        while not started:
            if loop.time() > give_up:
                raise DeviceError(f"serial port {self.url}: the oximeter did not start an upload",
                                  advice="choose 'upload' in the oximeter's menu and try again")
            if loop.time() >= next_request:   # newer units upload only once chosen in their menu: keep asking
                await session.write(lg.REQUEST_UPLOAD)
                next_request = loop.time() + self.options.upload_request_every
            try:
                frames = await session.read_frames(self.options.upload_request_every)
            except TimeoutError:
                continue
            for decoded in filter(None, map(self.decode, frames)):
                if isinstance(decoded, lg.LegacyUploadHeader | lg.LegacyRecord | lg.LegacyUploadLength):
                    started = True
                if isinstance(decoded, lg.LegacyUploadHeader):
                    headers.append((decoded.hour, decoded.minute))
                elif isinstance(decoded, lg.LegacyRecord):
                    records.append(decoded)
        for decoded in await self._collect_until_silence(session):
            if isinstance(decoded, lg.LegacyUploadHeader):
                headers.append((decoded.hour, decoded.minute))
            elif isinstance(decoded, lg.LegacyRecord):
                records.append(decoded)
        for _ in range(2):   # back to live mode, as OSCAR does
            await session.write(lg.START_LIVE)
        if not records:
            return None
        received = self.context.reading_context()
        duration = self.options.sample_period * len(records)
        start = start_from_hour_minute(headers, received.received_at.astimezone(self.context.timezone) - duration)
        return series_reading(spo2=[spo2_or_none(r.spo2) for r in records],
                              pulse_rate=[pulse_or_none(r.pulse_rate) for r in records],
                              start=start, period=self.options.sample_period, context=received)


class BerrymedOximeter(LiveOximeter):
    """A BerryMed BM1000-series on USB-serial (115200 8N1); it streams BCI packets unasked."""

    def _codec(self) -> Codec:
        return berrymed.BerrymedBciCodec()

    def _framer(self) -> IncrementalFramer:
        return SyncBitFramer(5)

    async def _settings(self) -> SerialSettings:
        return SerialSettings(self.url, baudrate=115200, parity="N")

    async def versions(self) -> dict[str, str]:
        """Software and hardware version strings (answers to `FF` and `FE`)."""
        session = await self._session(reconnect=False)
        await session.write(berrymed.ASK_SOFTWARE_VERSION + berrymed.ASK_HARDWARE_VERSION)
        parts: dict[str, str] = {"software": "", "hardware": ""}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.request_timeout
        while (remaining := deadline - loop.time()) > 0 and not (parts["hardware"] and len(parts["software"]) >= 12):
            try:
                frames = await session.read_frames(remaining)
            except TimeoutError:
                break
            for decoded in map(self.decode, frames):
                if isinstance(decoded, berrymed.BciVersion):
                    parts[decoded.which] += decoded.text
        return {k: v.strip() for k, v in parts.items()}
