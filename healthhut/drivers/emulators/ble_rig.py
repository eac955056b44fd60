"""An in-process Bluetooth LE rig: one bumble link, one bumble central for bleak, and emulated peripherals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from bumble import hci
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Service
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from healthhut.drivers.emulators.bleak_bumble import BumbleBleakClient, BumbleBleakScanner, BumbleCentral

logger = logging.getLogger(__name__)

CENTRAL_ADDRESS = "F0:F1:F2:F3:F4:F5"


def _device_on_link(name: str, address: str, link: LocalLink) -> Device:
    controller = Controller(name, link=link)
    host = Host(controller, AsyncPipeSink(controller))  # type: ignore[arg-type]
    return Device(name, hci.Address(address), host=host)


class EmulatedPeripheral:
    """Base of every emulated BLE device: a bumble peripheral advertising its name and service UUIDs.

    Subclasses build `services()`; `connection` is the current central link (one at a time, like real
    health devices), `disconnect()` drops it (the "out of range" knob).
    """

    name = "Emulated"
    advertised_services: Sequence[str] = ()

    def __init__(self, address: str, *, name: str | None = None) -> None:
        self.address = address
        if name is not None:
            self.name = name
        self.device: Device | None = None
        self.connection: Connection | None = None
        self.connected = asyncio.Event()

    def services(self) -> list[Service]:
        raise NotImplementedError

    def advertising_data(self) -> bytes:
        entries: list[tuple[int, bytes]] = [
            (AdvertisingData.FLAGS, bytes([0x06])),
            (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
        ]
        short = [UUID(u) for u in self.advertised_services if len(u) == 4]
        long = [UUID(u) for u in self.advertised_services if len(u) != 4]
        if short:
            entries.append((AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                            b"".join(bytes(u.to_bytes()) for u in short)))
        if long:
            entries.append((AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                            b"".join(bytes(u.to_bytes()) for u in long)))
        return bytes(AdvertisingData(entries))  # type: ignore[arg-type]

    async def start(self, link: LocalLink) -> None:
        device = _device_on_link(self.name, self.address, link)
        device.add_services(self.services())
        device.on("connection", self._on_connection)
        await device.power_on()
        device.advertising_data = self.advertising_data()
        await device.start_advertising(auto_restart=True, advertising_interval_min=20,
                                       advertising_interval_max=20)
        self.device = device

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        self.connected.set()
        connection.on("disconnection", lambda reason: self._on_disconnection(connection))
        self.on_connect(connection)

    def _on_disconnection(self, connection: Connection) -> None:
        if self.connection is connection:
            self.connection = None
            self.connected.clear()
        self.on_disconnect()

    def on_connect(self, connection: Connection) -> None:
        """Hook for subclasses (reset per-connection state)."""

    def on_disconnect(self) -> None:
        """Hook for subclasses (stop pending procedures)."""

    async def disconnect(self) -> None:
        """Drop the current connection from the peripheral side, as a device walking out of range would."""
        connection = self.connection
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.disconnect()

    async def stop(self) -> None:
        if self.device is not None:
            await self.disconnect()
            with contextlib.suppress(Exception):
                await self.device.power_off()
            self.device = None


class BleRig:
    """The link, the central and the peripherals; `backend()` gives the transport's backend arguments."""

    def __init__(self) -> None:
        self.link = LocalLink()
        self.central: BumbleCentral | None = None
        self.peripherals: list[EmulatedPeripheral] = []

    async def start(self) -> BleRig:
        device = _device_on_link("healthhut-central", CENTRAL_ADDRESS, self.link)
        await device.power_on()
        self.central = BumbleCentral(device)
        return self

    async def add(self, peripheral: EmulatedPeripheral) -> EmulatedPeripheral:
        await peripheral.start(self.link)
        self.peripherals.append(peripheral)
        return peripheral

    def backend(self) -> dict[str, Any]:
        """`client`, `scanner` and `options` for `healthhut.drivers.ble.transport_ble.BleBackend`."""
        if self.central is None:
            raise RuntimeError("start the rig first")
        return {"client": BumbleBleakClient, "scanner": BumbleBleakScanner,
                "options": {"bumble_central": self.central}}

    async def close(self) -> None:
        for peripheral in self.peripherals:
            await peripheral.stop()
        if self.central is not None:
            with contextlib.suppress(Exception):
                await self.central.device.power_off()
        self.peripherals.clear()


async def start_rig(*peripherals: EmulatedPeripheral) -> BleRig:
    rig = await BleRig().start()
    for peripheral in peripherals:
        await rig.add(peripheral)
    return rig

