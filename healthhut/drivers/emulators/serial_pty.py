"""Pty-pair plumbing for the serial device emulators: a device end driven from asyncio, and fault knobs.

The emulator owns the master side of `os.openpty()`; the driver opens the slave path with pyserial, as it
would a USB tty. A stable symlink lets the device be "unplugged" (both fds closed: the host read fails
with EIO) and "replugged" (a new pty behind the same path). The pty shares its termios with the master,
so the emulator sees the baud rate the host chose and can answer a wrong one with garbled bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import termios
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SPEEDS = {getattr(termios, f"B{rate}"): rate for rate in (1200, 2400, 4800, 9600, 19200, 38400, 57600,
                                                             115200, 230400)}


@dataclass
class SerialFaults:
    """How an emulated device misbehaves on the wire (all off by default)."""

    garbage_every: int = 0            # before every Nth frame, write `garbage_bytes` random bytes
    garbage_bytes: int = 7
    drop_every: int = 0               # from every Nth frame, drop one byte (cycling through positions)
    split_frames: bool = False        # write each frame in two writes, cycling the split offset
    unplug_after_frames: int | None = None   # close the pty after this many frames (mid-stream unplug)
    seed: int = 4


class PtyDevice(ABC):
    """An emulated serial device behind a pty pair; subclasses answer commands and stream frames."""

    #: The line settings the emulated device really uses; a host at another speed gets garbled bytes.
    baudrate = 115200

    def __init__(self, link: Path, *, faults: SerialFaults | None = None) -> None:
        self.link = link
        self.faults = faults or SerialFaults()
        self._rng = random.Random(self.faults.seed)
        self._master: int | None = None
        self._slave: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.frames_sent = 0
        self.bytes_received = bytearray()
        self.plugged = asyncio.Event()

    # ------------------------------------------------------------------ plugging
    @property
    def path(self) -> str:
        return str(self.link)

    async def plug(self) -> None:
        master, slave = os.openpty()
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        target = os.ttyname(slave)
        await asyncio.to_thread(_point_link, self.link, target)
        self.plugged.set()
        self._spawn(self._serve_host())
        self.on_plug()

    async def unplug(self) -> None:
        """Pull the cable: the host's next read fails; streaming tasks stop."""
        self.plugged.clear()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        for fd in (self._master, self._slave):
            if fd is not None:
                loop = asyncio.get_running_loop()
                loop.remove_reader(fd)
                loop.remove_writer(fd)
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
        log.info("emulator unplugged")

    async def replug(self) -> None:
        await self.plug()

    async def __aenter__(self) -> PtyDevice:
        await self.plug()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.unplug()
        await asyncio.to_thread(_remove_link, self.link)

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start(self, coro: object) -> None:
        """Run a streaming coroutine until unplugged."""
        self._spawn(coro)

    # ------------------------------------------------------------------ line
    def host_baudrate(self) -> int | None:
        if self._master is None:
            return None
        return _SPEEDS.get(termios.tcgetattr(self._master)[4])

    def host_speed_matches(self) -> bool:
        return self.host_baudrate() == self.baudrate

    async def _write_raw(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            master = self._master
            if master is None:
                raise ConnectionError("unplugged")
            try:
                written = os.write(master, view)
                view = view[written:]
            except BlockingIOError:
                await _wait_fd(master, writable=True)

    async def send_frame(self, frame: bytes) -> None:
        """Write one frame, applying the fault knobs; a host at the wrong speed receives noise."""
        faults = self.faults
        if not self.plugged.is_set():
            raise ConnectionError("unplugged")
        self.frames_sent += 1
        n = self.frames_sent
        if not self.host_speed_matches():
            frame = bytes(self._rng.randrange(256) for _ in frame)
        if faults.garbage_every and n % faults.garbage_every == 0:
            await self._write_raw(bytes(self._rng.randrange(256) for _ in range(faults.garbage_bytes)))
        if faults.drop_every and n % faults.drop_every == 0 and len(frame) > 1:
            at = (n // faults.drop_every) % len(frame)
            frame = frame[:at] + frame[at + 1:]
        if faults.split_frames and len(frame) > 1:
            at = 1 + n % (len(frame) - 1)
            await self._write_raw(frame[:at])
            await asyncio.sleep(0.001)
            await self._write_raw(frame[at:])
        else:
            await self._write_raw(frame)
        if faults.unplug_after_frames is not None and n >= faults.unplug_after_frames:
            faults.unplug_after_frames = None
            await self.unplug()
            raise ConnectionError("unplugged mid-stream")

    async def send_paced(self, rate_hz: float, send_next: Callable[[], Awaitable[None]],
                         keep_going: Callable[[], bool] = lambda: True) -> None:
        """Await `send_next` `rate_hz` times a second while `keep_going()`; ends quietly when unplugged.

        Each send is due one period after the previous one was due, so a late send does not slow the rate.
        """
        loop = asyncio.get_running_loop()
        period = 1.0 / rate_hz
        next_at = loop.time()
        try:
            while keep_going():
                await send_next()
                next_at += period
                await asyncio.sleep(max(0.0, next_at - loop.time()))
        except ConnectionError:
            return

    async def _serve_host(self) -> None:
        master = self._master
        if master is None:
            return
        while True:
            await _wait_fd(master, writable=False)
            try:
                data = os.read(master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                return    # host closed its end (EIO): wait for it to reopen through plug()
            if not data:
                return
            self.bytes_received += data
            if self.host_speed_matches():
                await self.on_host_bytes(data)

    # ------------------------------------------------------------------ device behaviour
    def on_plug(self) -> None:  # noqa: B027 - optional hook
        """Called after every plug (start spontaneous streams here)."""

    @abstractmethod
    async def on_host_bytes(self, data: bytes) -> None:
        """Bytes the host wrote (only when its line speed matches the device's)."""


async def _wait_fd(fd: int, *, writable: bool) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def _ready() -> None:
        if not ready.done():
            ready.set_result(None)

    if writable:
        loop.add_writer(fd, _ready)
    else:
        loop.add_reader(fd, _ready)
    try:
        await ready
    finally:
        if writable:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


def _point_link(link: Path, target: str) -> None:
    temporary = link.with_name(link.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(target)
    temporary.replace(link)


def _remove_link(link: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
