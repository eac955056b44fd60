"""A bleak backend (client + scanner) driving a bumble central on an in-process link, for emulated devices.

Drivers keep using `BleakScanner`/`BleakClient`; the transport passes `backend=` and `bumble_central=` through
bleak's public constructor keyword arguments. Test infrastructure: it imports bleak's backend base classes,
the one place besides `drivers.ble.transport_ble` that does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bleak.uuids import normalize_uuid_str
from bumble import hci
from bumble.att import ATT_Error
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import Characteristic as BumbleCharacteristic

logger = logging.getLogger(__name__)

CCCD_UUID = "00002902-0000-1000-8000-00805f9b34fb"
_PROPERTY_NAMES = {
    BumbleCharacteristic.Properties.BROADCAST: "broadcast",
    BumbleCharacteristic.Properties.READ: "read",
    BumbleCharacteristic.Properties.WRITE_WITHOUT_RESPONSE: "write-without-response",
    BumbleCharacteristic.Properties.WRITE: "write",
    BumbleCharacteristic.Properties.NOTIFY: "notify",
    BumbleCharacteristic.Properties.INDICATE: "indicate",
    BumbleCharacteristic.Properties.AUTHENTICATED_SIGNED_WRITES: "authenticated-signed-writes",
}


def _uuid_str(uuid: UUID) -> str:
    return normalize_uuid_str(uuid.to_hex_str("-"))


class BumbleCentral:
    """One bumble central device plus the lock that serialises its LE connects (one may be pending)."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.connect_lock = asyncio.Lock()
        self.failing_connects = 0   # the next N connects drop during set-up, as flaky links do
        self.connect_attempts = 0


class BumbleBleakScanner(BaseBleakScanner):
    """Scanner backend: bumble advertisement reports → bleak detection callbacks."""

    def __init__(self, detection_callback: Any, service_uuids: list[str] | None, scanning_mode: str,
                 *, bumble_central: BumbleCentral, **kwargs: Any) -> None:
        super().__init__(detection_callback, service_uuids)
        self._central = bumble_central
        self._active = scanning_mode == "active"

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement.data
        names = data.get_all(AdvertisingData.Type.COMPLETE_LOCAL_NAME) or data.get_all(
            AdvertisingData.Type.SHORTENED_LOCAL_NAME)
        name = str(names[0]) if names else None
        uuids: list[str] = []
        for kind in (AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                     AdvertisingData.Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                     AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                     AdvertisingData.Type.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS):
            for group in data.get_all(kind):
                for uuid in group if isinstance(group, list) else [group]:
                    uuids.append(_uuid_str(uuid))
        uuids = list(dict.fromkeys(uuids))
        manufacturer: dict[int, bytes] = {}
        for entry in data.get_all(AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA):
            company, payload = entry
            manufacturer[int(company)] = bytes(payload)
        if not self.is_allowed_uuid(uuids):
            return
        address = str(advertisement.address).split("/")[0]
        adv = AdvertisementData(local_name=name, manufacturer_data=manufacturer, service_data={},
                                service_uuids=uuids, tx_power=None, rssi=advertisement.rssi, platform_data=())
        device = self.create_or_update_device(address, address, name, advertisement.address, adv)
        self.call_detection_callbacks(device, adv)

    async def start(self) -> None:
        self.seen_devices = {}
        self._central.device.on("advertisement", self._on_advertisement)
        await self._central.device.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        self._central.device.remove_listener("advertisement", self._on_advertisement)
        if self._central.device.scanning:
            await self._central.device.stop_scanning()


class BumbleBleakClient(BaseBleakClient):
    """Client backend: GATT operations through a bumble `Peer` on the shared in-process link."""

    def __init__(self, address_or_ble_device: BLEDevice | str, *,
                 disconnected_callback: Callable[[], None] | None, timeout: float,
                 services: set[str] | None = None, bumble_central: BumbleCentral, **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        self._central = bumble_central
        self._ble_device = address_or_ble_device if isinstance(address_or_ble_device, BLEDevice) else None
        self._service_filter = services
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._mtu = 23
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        if self._ble_device is not None and self._ble_device.name:
            return self._ble_device.name
        return self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def _resolve_address(self, seconds: float) -> hci.Address:
        if self._ble_device is not None and isinstance(self._ble_device.details, hci.Address):
            return self._ble_device.details
        # Like BlueZ, a bare address is resolved by scanning first (bumble's own connect timeout hangs
        # against a peer that is not advertising).
        found: asyncio.Future[hci.Address] = asyncio.get_running_loop().create_future()

        def on_advertisement(advertisement: Advertisement) -> None:
            if str(advertisement.address).split("/")[0].upper() == self.address.upper() and not found.done():
                found.set_result(advertisement.address)

        device = self._central.device
        device.on("advertisement", on_advertisement)
        started = False
        try:
            if not device.scanning:
                await device.start_scanning(filter_duplicates=False)
                started = True
            return await asyncio.wait_for(found, seconds)
        except TimeoutError as exc:
            message = f"Device with address {self.address} was not found"
            raise BleakDeviceNotFoundError(self.address, message) from exc
        finally:
            device.remove_listener("advertisement", on_advertisement)
            if started and device.scanning:
                await device.stop_scanning()

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        timeout = float(kwargs.get("timeout", self._timeout))
        address = await self._resolve_address(timeout)
        self._central.connect_attempts += 1
        if self._central.failing_connects > 0:
            self._central.failing_connects -= 1
            raise BleakError("Disconnected during connection set-up")
        device = self._central.device
        async with self._central.connect_lock:
            try:
                connection = await asyncio.wait_for(device.connect(address, timeout=None), timeout)
            except TimeoutError as exc:
                # The emulated controller ignores Create Connection Cancel; clear its pending state by hand.
                controller = getattr(device.host, "controller", None)
                if controller is not None and hasattr(controller, "pending_le_connection"):
                    controller.pending_le_connection = None
                raise TimeoutError(f"connect to {self.address} timed out") from exc
            except hci.HCI_Error as exc:
                raise BleakError(f"connect to {self.address} failed: {exc}") from exc
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(connection)
        self._peer = peer
        try:
            self._mtu = await peer.request_mtu(247)
            await self._discover(peer)
        except Exception:
            await self.disconnect()
            raise

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self._peer = None
        self._subscriptions.clear()
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def _discover(self, peer: Peer) -> None:
        uuids = [UUID(u) for u in self._service_filter] if self._service_filter else []
        collection = BleakGATTServiceCollection()
        for service in await peer.discover_services(uuids):
            bleak_service = BleakGATTService(service, service.handle, _uuid_str(service.uuid))
            collection.add_service(bleak_service)
            for characteristic in await peer.discover_characteristics(service=service):
                properties = [name for flag, name in _PROPERTY_NAMES.items()
                              if characteristic.properties & flag]
                bleak_char = BleakGATTCharacteristic(
                    characteristic, characteristic.handle, _uuid_str(characteristic.uuid),
                    properties,  # type: ignore[arg-type]
                    lambda: self._mtu - 3, bleak_service)
                collection.add_characteristic(bleak_char)
                for descriptor in await peer.discover_descriptors(characteristic):
                    collection.add_descriptor(BleakGATTDescriptor(
                        descriptor, descriptor.handle, _uuid_str(descriptor.type), bleak_char))
        self.services = collection

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        with contextlib.suppress(hci.HCI_Error, asyncio.CancelledError, ConnectionError):
            await connection.disconnect()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        if self._connection is None:
            raise BleakError("Not connected")
        await self._connection.pair()

    async def unpair(self) -> None:
        raise NotImplementedError("unpair is not emulated")

    async def _att(self, operation: Any) -> Any:
        try:
            return await operation
        except BleakError:
            raise
        except ATT_Error as exc:  # named like BlueZ's errors ("Insufficient Authentication" ...)
            raise BleakError(f"ATT error {exc.error_name}".replace("_", " ")) from exc
        except Exception as exc:  # bumble raises protocol/timeout errors; bleak callers expect BleakError
            raise BleakError(f"ATT operation failed: {type(exc).__name__}") from exc

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False,
                             **kwargs: Any) -> bytearray:
        peer = self._require_peer()
        return bytearray(await self._att(peer.read_value(characteristic.handle)))

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False,
                                   **kwargs: Any) -> bytearray:
        peer = self._require_peer()
        return bytearray(await self._att(peer.read_value(descriptor.handle)))

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any,
                              response: bool) -> None:
        peer = self._require_peer()
        await self._att(peer.write_value(characteristic.handle, bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        peer = self._require_peer()
        await self._att(peer.write_value(descriptor.handle, bytes(data), with_response=True))

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback,
                           **kwargs: Any) -> None:
        peer = self._require_peer()
        props = characteristic.properties
        if "notify" not in props and "indicate" not in props:
            raise BleakError(f"characteristic {characteristic.uuid} does not notify or indicate")
        cccd = characteristic.get_descriptor(CCCD_UUID)
        if cccd is None:
            raise BleakError(f"characteristic {characteristic.uuid} has no CCCD")

        def deliver(value: bytes) -> None:
            # A raising callback would keep bumble from confirming the indication (30 s stall on the peer).
            try:
                callback(bytearray(value))
            except Exception:
                logger.exception("notification callback failed for handle %d", characteristic.handle)

        self._subscriptions[characteristic.handle] = deliver
        prefer_notify = "notify" in props
        # Write the CCCD ourselves (with response) so a refusing peer surfaces as an error, then register.
        value = b"\x01\x00" if prefer_notify else b"\x02\x00"
        await self._att(peer.write_value(cccd.handle, value, with_response=True))
        await self._att(peer.subscribe(characteristic.obj, deliver, prefer_notify=prefer_notify))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        deliver = self._subscriptions.pop(characteristic.handle, None)
        await self._att(peer.unsubscribe(characteristic.obj, deliver))
