"""An emulated BerryMed oximeter on the BLE transparent-UART service, streaming BCI packets split unevenly."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from healthhut.drivers.codecs.berrymed import BciSample, encode_sample, encode_version
from healthhut.drivers.emulators.ble_common import (
    NOTIFY,
    READ,
    READABLE,
    WRITEABLE,
    DeviceInfo,
    Misbehaviour,
    battery_service,
)
from healthhut.drivers.emulators.ble_rig import EmulatedPeripheral

UART_SERVICE = "49535343-FE7D-4AE5-8FA9-9FAFD205E455"
UART_NOTIFY = "49535343-1E4D-4BD9-BA61-23C647249616"
UART_WRITE = "49535343-8841-43F4-A8D4-ECBE34729BB3"


class BerryMedOximeter(EmulatedPeripheral):
    """`stream()` sends BCI packets as one byte stream cut into `chunk`-byte notifications (not aligned)."""

    name = "BerryMed"
    advertised_services = (UART_SERVICE,)

    def __init__(self, address: str, *, behaviour: Misbehaviour | None = None, name: str | None = None,
                 software_version: str = "V1.4.2", chunk: int = 20) -> None:
        super().__init__(address, name=name)
        self.behaviour = behaviour or Misbehaviour()
        self.software_version = software_version
        self.chunk = chunk
        self.commands: list[bytes] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def services(self) -> list[Service]:
        self.notify = Characteristic(UART_NOTIFY, NOTIFY, READABLE, b"", descriptors=self.behaviour.descriptors())
        write: Characteristic[bytes] = Characteristic(UART_WRITE, Characteristic.Properties.WRITE
                               | Characteristic.Properties.WRITE_WITHOUT_RESPONSE, WRITEABLE,
                               CharacteristicValue(write=self._on_write))
        return [Service(UART_SERVICE, [self.notify, write]),
                battery_service(DeviceInfo(battery=64)),
                Service("180A", [Characteristic("2A24", READ, READABLE, b"BM1000")])]

    def _on_write(self, _connection: Connection, value: bytes) -> None:
        self.commands.append(bytes(value))
        if bytes(value) == b"\xff":
            text = self.software_version.ljust(12)
            answer = b"".join(encode_version("software", text[i:i + 4]) for i in (0, 4, 8))
            task = asyncio.get_running_loop().create_task(self._send(answer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, data: bytes) -> None:
        assert self.device is not None
        await asyncio.sleep(0)
        for start in range(0, len(data), self.chunk):
            await self.device.notify_subscribers(self.notify, data[start:start + self.chunk])

    async def stream(self, samples: Sequence[BciSample], *, garbage_every: int = 0) -> None:
        """Send packets; `garbage_every` n inserts a stray byte pair after every n-th packet (noise on the UART)."""
        data = bytearray()
        for index, sample in enumerate(samples, start=1):
            packet = encode_sample(sample)
            data += self.behaviour.frame(packet)
            if garbage_every and index % garbage_every == 0:
                data += b"\x13\x37"
        await self._send(bytes(data))
