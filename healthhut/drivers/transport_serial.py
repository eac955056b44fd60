"""Serial ports for the drivers: open by pyserial URL, read without blocking the loop, enumerate, reopen.

The only module that imports pyserial. A port is any pyserial URL: a device path (`/dev/ttyUSB0`), a pty
(`/dev/pts/5`), `socket://host:port`, `loop://`. Reads run in one reader thread per port that hands bytes to
the event loop (pyserial-asyncio's fd-watching cannot serve `loop://` or `socket://`, a thread serves all).
Every pyserial/OS error is translated here into DeviceError, so drivers never see SerialException.
"""

from __future__ import annotations

import asyncio
import logging
import termios
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from healthhut.errors import DeviceError

log = logging.getLogger(__name__)

Parity = Literal["N", "O", "E"]

UNPLUG_ADVICE = "check the USB cable and that the device is switched on"


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """How to open one port. Flow control is always off: Contec data bytes can be 0x11/0x13 (XON/XOFF)."""

    url: str
    baudrate: int = 115200
    parity: Parity = "N"
    bytesize: int = 8
    stopbits: int = 1
    poll_interval: float = 0.05   # reader-thread read timeout: bounds how long close() waits


class ByteChannel(Protocol):
    """What drivers need from a port; SerialPort implements it, tests may pass any other byte channel."""

    url: str

    async def read(self) -> bytes:
        """The next bytes received (at least one); DeviceError when the port is gone."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class SerialPort:
    """An open pyserial port with a reader thread feeding an asyncio queue."""

    def __init__(self, port: object, settings: SerialSettings, loop: asyncio.AbstractEventLoop) -> None:
        self._port = port
        self.settings = settings
        self.url = settings.url
        self._loop = loop
        self._queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        self._stop = threading.Event()
        self._failure: DeviceError | None = None
        self._thread = threading.Thread(target=self._read_forever, name=f"serial-reader {settings.url}",
                                        daemon=True)
        self._thread.start()

    @classmethod
    async def open(cls, settings: SerialSettings) -> SerialPort:
        """Open the port in a worker thread (opening a tty blocks); DeviceError if it cannot be opened."""
        import serial

        def _open_with(parity: str) -> object:
            return serial.serial_for_url(
                settings.url, baudrate=settings.baudrate, parity=parity, bytesize=settings.bytesize,
                stopbits=settings.stopbits, timeout=settings.poll_interval, write_timeout=2.0,
                xonxoff=False, rtscts=False, dsrdtr=False)

        def _open() -> object:
            try:
                return _open_with(settings.parity)
            except termios.error:
                if settings.parity == "N":
                    raise
            # A pty has no parity and Linux refuses to set PARENB on one that had it set before; a real
            # UART never gets here. Use the line without parity rather than fail.
            port = _open_with("N")
            log.warning("serial port %s does not accept parity %s; using none", settings.url, settings.parity)
            return port

        try:
            port = await asyncio.to_thread(_open)
        except ValueError as exc:
            raise DeviceError(f"serial port {settings.url}: invalid settings ({exc})", transient=False) from None
        except (serial.SerialException, OSError, termios.error) as exc:
            raise DeviceError(f"cannot open serial port {settings.url}: {_why(exc)}", advice=UNPLUG_ADVICE) from None
        log.info("opened serial port %s at %d %d%s%d", settings.url, settings.baudrate, settings.bytesize,
                 settings.parity, settings.stopbits)
        return cls(port, settings, asyncio.get_running_loop())

    def _deliver(self, item: bytes | BaseException) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:   # the loop is closed: nobody is listening any more
            self._stop.set()

    def _read_forever(self) -> None:
        port = self._port
        while not self._stop.is_set():
            try:
                waiting = port.in_waiting  # type: ignore[attr-defined]
                data = port.read(max(1, min(waiting, 65536)))  # type: ignore[attr-defined]
            except Exception as exc:  # pyserial raises SerialException, OSError, TypeError on a closed fd
                if not self._stop.is_set():
                    self._deliver(exc)
                return
            if data:
                self._deliver(bytes(data))

    async def read(self) -> bytes:
        if self._failure is not None:
            raise self._failure
        item = await self._queue.get()
        if isinstance(item, BaseException):
            self._failure = DeviceError(f"serial port {self.url} lost: {_why(item)}", advice=UNPLUG_ADVICE)
            log.warning("serial port %s lost (%s)", self.url, type(item).__name__)
            raise self._failure
        return item

    async def write(self, data: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        try:
            await asyncio.to_thread(self._port.write, data)  # type: ignore[attr-defined]
        except Exception as exc:
            raise DeviceError(f"cannot write to serial port {self.url}: {_why(exc)}",
                              advice=UNPLUG_ADVICE) from None

    async def close(self) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 2.0)
        try:
            await asyncio.to_thread(self._port.close)  # type: ignore[attr-defined]
        except Exception as exc:  # closing a vanished device may fail; it is closed either way
            log.debug("closing serial port %s: %s", self.url, type(exc).__name__)


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def open_serial(settings: SerialSettings) -> ByteChannel:
    return await SerialPort.open(settings)


PortOpener = Callable[[SerialSettings], Awaitable[ByteChannel]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reopen delays: initial, multiplied by `factor` per failure up to `maximum`; `attempts` None = forever."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    attempts: int | None = None


async def open_with_backoff(settings: SerialSettings, *, backoff: Backoff = Backoff(),
                            sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                            opener: PortOpener = open_serial) -> ByteChannel:
    """Open the port, retrying transient failures with backoff (the sleep is injectable for tests)."""
    delay = backoff.initial
    failures = 0
    while True:
        try:
            return await opener(settings)
        except DeviceError as exc:
            failures += 1
            if not exc.transient or (backoff.attempts is not None and failures >= backoff.attempts):
                raise
            log.warning("serial port %s unavailable; retry %d in %.1f s", settings.url, failures, delay)
            await sleep(delay)
            delay = min(delay * backoff.factor, backoff.maximum)


# ------------------------------------------------------------------------------------------- enumeration

@dataclass(frozen=True, slots=True)
class LikelyDevice:
    bridge: str
    guess: str
    driver: str | None = None


# USB VID:PID → what usually sits behind it. Only the CP210x/Contec pairing is from a source (OSCAR);
# the others are common USB-serial bridges with no device implied. BerryMed's bridge ids are unknown (§8).
LIKELY_DEVICES: dict[tuple[int, int], LikelyDevice] = {
    (0x10C4, 0xEA60): LikelyDevice("CP210x", "likely a Contec CMS50 (other CP210x devices share this id)",
                                   "cms50"),
    (0x067B, 0x2303): LikelyDevice("PL2303", "a USB-serial adapter: kiosk board or oximeter cable"),
    (0x1A86, 0x7523): LikelyDevice("CH340", "a USB-serial adapter: often a kiosk board (PC-300?)"),
    (0x0403, 0x6001): LikelyDevice("FT232R", "a USB-serial adapter"),
}


@dataclass(frozen=True, slots=True)
class SerialPortInfo:
    device: str
    description: str
    vid: int | None
    pid: int | None
    manufacturer: str | None
    product: str | None
    serial_number: str | None
    likely: LikelyDevice | None

    @property
    def usb_id(self) -> str | None:
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04X}:{self.pid:04X}"


def list_serial_ports() -> list[SerialPortInfo]:
    """Serial ports the OS knows, with USB ids and a guess at the device (blocking: reads sysfs)."""
    from serial.tools import list_ports

    ports = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        key = (port.vid, port.pid) if port.vid is not None and port.pid is not None else None
        ports.append(SerialPortInfo(
            device=port.device, description=port.description or "", vid=port.vid, pid=port.pid,
            manufacturer=port.manufacturer, product=port.product, serial_number=port.serial_number,
            likely=LIKELY_DEVICES.get(key) if key else None))
    return ports
