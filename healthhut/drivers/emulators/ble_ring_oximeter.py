"""An emulated Viatom/Wellue O2Ring (legacy "Oxy" protocol) holding stored nights as version-3 files."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from healthhut.drivers.codecs.viatom import (
    REQUEST_START,
    ViatomAssembler,
    ViatomCommand,
    ViatomInfo,
    ViatomRequest,
    ViatomResponse,
    decode_frame,
    encode_info,
    encode_response,
)
from healthhut.drivers.emulators.ble_common import NOTIFY, READABLE, WRITEABLE, DeviceClock, Misbehaviour
from healthhut.drivers.emulators.ble_rig import EmulatedPeripheral
from healthhut.errors import DecodeError

RING_SERVICE = "14839AC4-7D7E-415C-9A42-167340CF2339"
RING_WRITE = "8B00ACE7-EB0B-49B0-BBE9-9AEE0A26E1A3"
RING_NOTIFY = "0734594A-A8E7-4B1A-A6B1-CD5243059A57"
STATUS_ERROR = 0x01


@dataclass
class RingBehaviour(Misbehaviour):
    """Misbehaviour plus ring specifics: `corrupt_blocks` are sent once with a bad CRC, then correctly."""

    corrupt_blocks: frozenset[int] = frozenset()
    block_size: int = 256


class RingOximeter(EmulatedPeripheral):
    """`files` maps `YYYYMMDDhhmmss` names to stored-file bytes (see `viatom_file.encode_viatom_file`)."""

    name = "O2Ring 0001"
    advertised_services = (RING_SERVICE,)

    def __init__(self, address: str, *, files: Mapping[str, bytes] | None = None, clock: DeviceClock | None = None,
                 behaviour: RingBehaviour | None = None, name: str | None = None, serial: str = "2205C0001",
                 chunk: int = 20) -> None:
        super().__init__(address, name=name)
        self.files = dict(files or {})
        self.clock = clock or DeviceClock()
        self.behaviour = behaviour or RingBehaviour()
        self.serial = serial
        self.chunk = chunk
        self.requests: list[ViatomRequest] = []
        self._assembler = ViatomAssembler(REQUEST_START)
        self._open: bytes | None = None
        self._blocks_sent = 0
        self._corrupted: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()  # one answer's chunks never interleave with another's

    def services(self) -> list[Service]:
        self.notify = Characteristic(RING_NOTIFY, NOTIFY, READABLE, b"", descriptors=self.behaviour.descriptors())
        write: Characteristic[bytes] = Characteristic(
            RING_WRITE, Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            WRITEABLE, CharacteristicValue(write=self._on_write))
        return [Service(RING_SERVICE, [self.notify, write])]

    def on_connect(self, connection: Connection) -> None:
        self._assembler = ViatomAssembler(REQUEST_START)
        self._open = None
        self._blocks_sent = 0

    def _on_write(self, _connection: Connection, value: bytes) -> None:
        for frame in self._assembler.feed(bytes(value)):
            try:
                request = decode_frame(frame)
            except DecodeError:
                continue  # a real ring ignores a bad frame; the client times out and retries
            if isinstance(request, ViatomRequest):
                self.requests.append(request)
                task = asyncio.get_running_loop().create_task(self._answer(request))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _info(self) -> ViatomInfo:
        return ViatomInfo("O2Ring", self.serial, self.clock.wall_time(), 77, tuple(sorted(self.files)))

    async def _answer(self, request: ViatomRequest) -> None:
        await asyncio.sleep(0)
        command, status, block, payload = request.command, 0, request.block, b""
        if command == ViatomCommand.INFO:
            payload = encode_info(self._info())
        elif command == ViatomCommand.CONFIG:
            status = self._configure(request.payload)
        elif command == ViatomCommand.FILE_OPEN:
            name = request.payload.rstrip(b"\x00").decode("ascii", errors="replace")
            self._open = self.files.get(name)
            status = 0 if self._open is not None else STATUS_ERROR
            payload = len(self._open).to_bytes(4, "little") if self._open is not None else b""
        elif command == ViatomCommand.FILE_READ:
            if self._open is None:
                status = STATUS_ERROR
            else:
                limit = self.behaviour.disconnect_after
                if limit is not None and self._blocks_sent >= limit:
                    await self.disconnect()
                    return
                size = self.behaviour.block_size
                payload = self._open[block * size:(block + 1) * size]
                self._blocks_sent += 1
                if self.behaviour.indication_delay:
                    await asyncio.sleep(self.behaviour.indication_delay)
        elif command == ViatomCommand.FILE_CLOSE:
            self._open = None
        elif command != ViatomCommand.PING:
            status = STATUS_ERROR
        frame = encode_response(ViatomResponse(status, block, payload))
        if command == ViatomCommand.FILE_READ and block in self.behaviour.corrupt_blocks \
                and block not in self._corrupted:
            self._corrupted.add(block)
            frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
        frame = self.behaviour.frame(frame)
        await self._send(frame)
        if self.behaviour.duplicate_records and command == ViatomCommand.FILE_READ:
            await self._send(frame)

    def _configure(self, payload: bytes) -> int:
        try:
            document = json.loads(payload.decode())
            wall = datetime.strptime(document["SetTIME"], "%Y-%m-%d,%H:%M:%S")
        except (ValueError, KeyError):
            return STATUS_ERROR
        device_now = wall.replace(tzinfo=self.clock.timezone)
        self.clock.offset = device_now - self.clock.now()
        self.clock.unset = False
        self.clock.writes.append(device_now)
        return 0

    async def _send(self, data: bytes) -> None:
        assert self.device is not None
        async with self._send_lock:
            await self._send_chunks(data)

    async def _send_chunks(self, data: bytes) -> None:
        assert self.device is not None
        with contextlib.suppress(Exception):  # link dropped while answering
            for start in range(0, len(data), self.chunk):
                await self.device.notify_subscribers(self.notify, data[start:start + self.chunk])
