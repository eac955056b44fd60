"""What every serial driver shares: the driver's context (device, site zone, clock) and a framed session.

A `SerialSession` owns one open port and one incremental framer. When the port goes away (unplugged,
USB reset) it reopens it with backoff, says so in the log, runs the driver's `on_reopen` hook (to restart
a stream) and carries on; the sleep used for backoff is injectable so tests never wait in real time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from types import TracebackType
from typing import Any, Self

from healthhut.drivers.codecs.base import Frame, ReadingContext
from healthhut.drivers.codecs.framing import IncrementalFramer
from healthhut.drivers.transport_serial import (
    Backoff,
    ByteChannel,
    PortOpener,
    SerialSettings,
    open_serial,
    open_with_backoff,
)
from healthhut.errors import DecodeError, DeviceError
from healthhut.readings import DeviceIdentity

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DriverContext:
    """What a driver is told about its device and site; `clock` stamps received_at (injectable)."""

    device: DeviceIdentity
    timezone: tzinfo = UTC
    clock: Callable[[], datetime] = utc_now
    patient_hint: str | None = None

    def reading_context(self) -> ReadingContext:
        return ReadingContext(device=self.device, received_at=self.clock(), timezone=self.timezone,
                              patient_hint=self.patient_hint)


async def count_frames(port: ByteChannel, framer: IncrementalFramer, decode: Callable[[bytes], Any], wanted: type,
                       *, within: float, needed: int) -> int:
    """Read an open port until `needed` frames decode to `wanted`, or `within` seconds pass; how many did.

    Protocol detection and staff probes both listen this way: undecodable frames are noise, not an error.
    """
    loop = asyncio.get_running_loop()
    deadline, seen = loop.time() + within, 0
    while seen < needed and (remaining := deadline - loop.time()) > 0:
        try:
            data = await asyncio.wait_for(port.read(), remaining)
        except TimeoutError:
            break
        for frame in framer.feed(data):
            try:
                seen += isinstance(decode(frame.data), wanted)
            except DecodeError:
                continue
    return seen


class SerialSession:
    """One port + one framer; `read_frames` returns the frames of the next chunk of bytes."""

    def __init__(self, settings: SerialSettings, framer_factory: Callable[[], IncrementalFramer], *,
                 backoff: Backoff = Backoff(), sleep: Sleep = asyncio.sleep, opener: PortOpener = open_serial,
                 reconnect: bool = True, on_reopen: Callable[[SerialSession], Awaitable[None]] | None = None,
                 ) -> None:
        self.settings = settings
        self._framer_factory = framer_factory
        self.framer = framer_factory()
        self.backoff = backoff
        self._sleep = sleep
        self._opener = opener
        self.reconnect = reconnect
        self.on_reopen = on_reopen
        self._port: ByteChannel | None = None
        self.reopens = 0
        self.discarded_before_reopen = 0

    @property
    def discarded(self) -> int:
        return self.discarded_before_reopen + self.framer.discarded

    async def open(self) -> None:
        if self._port is None:
            self._port = await open_with_backoff(self.settings, backoff=self.backoff, sleep=self._sleep,
                                                 opener=self._opener)

    async def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            await port.close()

    async def write(self, data: bytes) -> None:
        await self.open()
        assert self._port is not None
        await self._port.write(data)

    async def reopen(self, why: str) -> None:
        """Close and reopen the port with backoff; a fresh framer, since the byte stream restarts."""
        log.warning("serial port %s: %s; reopening", self.settings.url, why)
        await self.close()
        self.discarded_before_reopen += self.framer.discarded + self.framer.pending
        self.framer = self._framer_factory()
        await self.open()
        self.reopens += 1
        log.info("serial port %s reopened (reopen %d)", self.settings.url, self.reopens)
        if self.on_reopen is not None:
            await self.on_reopen(self)

    async def read_frames(self, within: float | None) -> list[Frame]:
        """Frames from the next bytes; TimeoutError if none arrive in time; [] after a reopen.

        A lost port is reopened (when `reconnect`) and the call returns no frames; otherwise the
        DeviceError propagates.
        """
        await self.open()
        assert self._port is not None
        try:
            data = await asyncio.wait_for(self._port.read(), within)
        except DeviceError as exc:
            if not self.reconnect:
                await self.close()
                raise
            await self.reopen(exc.message)
            return []
        return self.framer.feed(data)


class SerialDriver:
    """A serial driver's port lifecycle: one SerialSession, made by `_new_session` on first use, closed on exit."""

    def __init__(self, url: str, context: DriverContext, *, sleep: Sleep, opener: PortOpener) -> None:
        self.url = url
        self.context = context
        self._sleep = sleep
        self._opener = opener
        self.session: SerialSession | None = None
        self.decode_errors = 0

    async def _new_session(self) -> SerialSession:
        """The session for this device (settings, framer, backoff); called while no session is open."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def _session(self, *, reconnect: bool,
                       on_reopen: Callable[[SerialSession], Awaitable[None]] | None = None) -> SerialSession:
        """The open session, made on first use; `reconnect` and `on_reopen` apply from this call on."""
        if self.session is None:
            self.session = await self._new_session()
        self.session.reconnect = reconnect
        self.session.on_reopen = on_reopen
        await self.session.open()
        return self.session

    @property
    def discarded(self) -> int:
        return self.session.discarded if self.session is not None else 0
