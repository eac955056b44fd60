"""The Bluetooth LE transport: the only module that imports bleak and bleak-retry-connector.

Scan by service UUID or name, connect with bounded classified retries, turn notifications and indications
into async iterators over bounded queues, notice disconnects, reconnect with an injectable backoff, and
translate every bleak error into a `DeviceError` that tells staff what to try.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from healthhut.errors import DeviceError

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

ADVICE_OUT_OF_RANGE = ("out of range or asleep: bring the device closer and wake it"
                       " (press its Bluetooth button)")
ADVICE_BONDED = "bonded to another host or needs pairing: pair it again with this gateway"
ADVICE_BUSY = "adapter busy: wait a moment; if it persists restart the gateway's Bluetooth service"
ADVICE_DISCONNECTED = "the device hung up: keep it close and try again"
ADVICE_REFUSED = "the device refused the request: check the model is supported, then power-cycle it"

_BONDING_WORDS = ("authentic", "encrypt", "insufficient", "not permitted", "notpermitted", "pair", "bond")
_BUSY_WORDS = ("inprogress", "in progress", "busy", "slots", "no connection slot", "not ready")
_RANGE_WORDS = ("not found", "timeout", "timed out", "abort", "cancel", "unreachable")


def short_uuid(uuid: str) -> str:
    """The full 128-bit form of a 16-bit SIG UUID ("2a35" → "00002a35-0000-1000-8000-00805f9b34fb")."""
    uuid = uuid.lower()
    if len(uuid) == 4:
        return f"0000{uuid}-0000-1000-8000-00805f9b34fb"
    return uuid


def classify(exc: BaseException, doing: str) -> DeviceError:
    """A DeviceError for a bleak/transport failure, with staff advice chosen from what went wrong."""
    if isinstance(exc, DeviceError):
        return exc
    text = f"{type(exc).__name__} {exc}".lower()
    if isinstance(exc, TimeoutError) or any(word in text for word in _RANGE_WORDS):
        return DeviceError(f"{doing}: device not reachable", advice=ADVICE_OUT_OF_RANGE)
    if any(word in text for word in _BONDING_WORDS):
        return DeviceError(f"{doing}: access refused", advice=ADVICE_BONDED, transient=False)
    if any(word in text for word in _BUSY_WORDS):
        return DeviceError(f"{doing}: Bluetooth adapter busy", advice=ADVICE_BUSY)
    if "disconnect" in text or "not connected" in text:
        return DeviceError(f"{doing}: device disconnected", advice=ADVICE_DISCONNECTED)
    return DeviceError(f"{doing}: {type(exc).__name__}", advice=ADVICE_REFUSED)


@dataclass(frozen=True)
class BleBackend:
    """Which bleak backend to use: the platform's (BlueZ) by default, or e.g. the bumble emulation rig's."""

    client: Any = None
    scanner: Any = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def client_kwargs(self) -> dict[str, Any]:
        return {"backend": self.client, **self.options} if self.client is not None else dict(self.options)

    def scanner_kwargs(self) -> dict[str, Any]:
        return {"backend": self.scanner, **self.options} if self.scanner is not None else dict(self.options)


@dataclass(frozen=True, slots=True)
class Advertisement:
    """One device seen while scanning (what `devices scan` lists)."""

    address: str
    name: str | None
    rssi: int | None
    service_uuids: tuple[str, ...]
    manufacturer_ids: tuple[int, ...] = ()


async def scan(*, seconds: float = 5.0, service_uuids: Sequence[str] | None = None,
               name_contains: str | None = None, backend: BleBackend | None = None) -> list[Advertisement]:
    """Devices advertising any of `service_uuids` (or any device) whose name contains `name_contains`."""
    from bleak import BleakScanner

    backend = backend or BleBackend()
    uuids = [short_uuid(u) for u in service_uuids] if service_uuids else None
    try:
        discover: Any = BleakScanner.discover  # backend keyword arguments are not in bleak's stubs
        found = await discover(timeout=seconds, return_adv=True, service_uuids=uuids,
                               **backend.scanner_kwargs())
    except Exception as exc:
        raise classify(exc, "scan") from exc
    result = []
    for device, adv in found.values():
        name = adv.local_name or device.name
        if name_contains and (not name or name_contains.lower() not in name.lower()):
            continue
        result.append(Advertisement(device.address, name, adv.rssi, tuple(adv.service_uuids),
                                    tuple(adv.manufacturer_data)))
    return sorted(result, key=lambda a: a.address)


class NotificationStream:
    """Notifications of one or more characteristics, in arrival order, over a bounded queue.

    Ends with a DeviceError when the link drops; overflowing the queue (the consumer stalled) also ends it
    with an error instead of silently dropping records, so a download is retried rather than left holed.
    """

    def __init__(self, uuids: Sequence[str], maxsize: int) -> None:
        self.uuids = tuple(uuids)
        self._queue: asyncio.Queue[tuple[str, bytes] | BaseException] = asyncio.Queue(maxsize=maxsize)
        self._failed: BaseException | None = None

    def feed(self, uuid: str, data: bytes) -> None:
        if self._failed is not None:
            return
        try:
            self._queue.put_nowait((uuid, bytes(data)))
        except asyncio.QueueFull:
            self.fail(DeviceError("notifications arrived faster than they were handled",
                                  advice="the gateway is overloaded: try again"))

    def fail(self, error: BaseException) -> None:
        if self._failed is None:
            self._failed = error
            # Make room so the failure is always seen, even with a full queue.
            while self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(error)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        return (await self._get())[1]

    async def _get(self) -> tuple[str, bytes]:
        item = await self._queue.get()
        if isinstance(item, BaseException):
            self._queue.put_nowait(item)  # keep failing for later readers
            raise item
        return item

    async def next(self, within: float | None = None) -> bytes:
        """The next value; a DeviceError when none arrives `within` seconds."""
        return (await self.next_tagged(within))[1]

    async def next_tagged(self, within: float | None = None) -> tuple[str, bytes]:
        """The next (16-bit or full UUID as subscribed, value) pair; DeviceError after `within` seconds."""
        try:
            return await asyncio.wait_for(self._get(), within)
        except TimeoutError as exc:
            raise DeviceError(f"no data from the device for {within} s", advice=ADVICE_OUT_OF_RANGE) from exc


class BleConnection:
    """One live GATT connection: reads, writes and subscriptions by UUID, all failing as DeviceError."""

    def __init__(self, client: Any, address: str, name: str | None) -> None:
        self._client = client
        self.address = address
        self.name = name
        self.disconnected = asyncio.Event()
        self._streams: list[NotificationStream] = []

    def on_disconnected(self) -> None:
        self.disconnected.set()
        for stream in self._streams:
            stream.fail(DeviceError("device disconnected", advice=ADVICE_DISCONNECTED))

    @property
    def is_connected(self) -> bool:
        return not self.disconnected.is_set() and bool(self._client.is_connected)

    def has(self, uuid: str) -> bool:
        services = self._client.services
        return services is not None and services.get_characteristic(short_uuid(uuid)) is not None

    def service_uuids(self) -> list[str]:
        services = self._client.services
        return [s.uuid for s in services] if services is not None else []

    def notifying_uuids(self) -> list[str]:
        """Every characteristic that notifies or indicates (what `devices sniff` listens to)."""
        services = self._client.services
        if services is None:
            return []
        return [c.uuid for c in services.characteristics.values()
                if "notify" in c.properties or "indicate" in c.properties]

    def properties(self, uuid: str) -> frozenset[str]:
        char = self._client.services.get_characteristic(short_uuid(uuid))
        return frozenset(char.properties) if char is not None else frozenset()

    async def read(self, uuid: str) -> bytes:
        try:
            return bytes(await self._client.read_gatt_char(short_uuid(uuid)))
        except Exception as exc:
            raise classify(exc, f"read {uuid}") from exc

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        try:
            await self._client.write_gatt_char(short_uuid(uuid), data, response=response)
        except Exception as exc:
            raise classify(exc, f"write {uuid}") from exc

    async def subscribe(self, *uuids: str, maxsize: int = 1024) -> NotificationStream:
        """Enable notifications/indications (CCCD writes) and return one stream of all their values."""
        stream = NotificationStream(uuids, maxsize)
        if self.disconnected.is_set():
            raise DeviceError("device disconnected", advice=ADVICE_DISCONNECTED)
        self._streams.append(stream)
        for uuid in uuids:
            try:
                await self._client.start_notify(
                    short_uuid(uuid), lambda _char, data, tag=uuid: stream.feed(tag, data))
            except Exception as exc:
                raise classify(exc, f"subscribe {uuid}") from exc
        return stream

    async def close(self) -> None:
        try:
            await self._client.disconnect()
        except Exception as exc:  # closing a dead link is not worth an error for staff
            logger.debug("disconnect from device failed: %s", type(exc).__name__)
        self.disconnected.set()


@dataclass
class BleTransport:
    """Finds and connects to one device by address; `reconnect` retries with an injectable backoff."""

    address: str
    backend: BleBackend = field(default_factory=BleBackend)
    scan_timeout: float = 10.0
    max_attempts: int = 3
    backoff: Sequence[float] = (1.0, 2.0, 5.0, 10.0, 30.0)
    sleep: Sleep = asyncio.sleep

    async def connect(self) -> BleConnection:
        """Scan for the device, then connect with bleak-retry-connector's bounded, classified retries."""
        from bleak import BleakClient, BleakScanner
        from bleak_retry_connector import establish_connection

        try:
            device = await BleakScanner.find_device_by_address(self.address, timeout=self.scan_timeout,
                                                               **self.backend.scanner_kwargs())
        except Exception as exc:
            raise classify(exc, f"scan for {self.address}") from exc
        if device is None:
            raise DeviceError(f"device {self.address} not found", advice=ADVICE_OUT_OF_RANGE)
        holder: list[BleConnection] = []

        def on_disconnect(_client: Any) -> None:
            logger.info("device %s disconnected", self.address)
            if holder:
                holder[0].on_disconnected()

        try:
            client = await establish_connection(BleakClient, device, device.name or self.address,
                                                disconnected_callback=on_disconnect,
                                                max_attempts=self.max_attempts,
                                                **self.backend.client_kwargs())
        except Exception as exc:
            raise classify(exc, f"connect to {self.address}") from exc
        connection = BleConnection(client, self.address, device.name)
        holder.append(connection)
        logger.info("connected to device %s", self.address)
        return connection

    async def reconnect(self, *, attempts: int | None = None) -> BleConnection:
        """Connect, retrying transient failures after the backoff delays (the last delay repeats)."""
        limit = attempts if attempts is not None else len(self.backoff) + 1
        last: DeviceError | None = None
        for attempt in range(limit):
            try:
                return await self.connect()
            except DeviceError as exc:
                if not exc.transient:
                    raise
                last = exc
                if attempt + 1 < limit:
                    delay = self.backoff[min(attempt, len(self.backoff) - 1)]
                    logger.info("reconnect to %s failed (%s); retrying in %.1f s", self.address,
                                exc.message, delay)
                    await self.sleep(delay)
        assert last is not None
        raise last
