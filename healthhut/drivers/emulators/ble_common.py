"""GATT pieces every emulated health device shares: Device Information, Battery, Current Time, and RACP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from bumble.att import ATT_Error, ErrorCode
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Descriptor, Service

from healthhut.drivers.codecs.current_time import CurrentTime, decode_current_time, encode_current_time
from healthhut.drivers.codecs.device_info import encode_battery_level, encode_system_id, system_id_from_address
from healthhut.drivers.codecs.gatt_time import DeviceTime, ExactTime256
from healthhut.drivers.codecs.racp import (
    RacpNumberOfRecords,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponseCode,
    RacpResponseValue,
    decode_racp,
    encode_racp,
)
from healthhut.drivers.emulators.ble_rig import EmulatedPeripheral
from healthhut.errors import DecodeError

logger = logging.getLogger(__name__)

READ = Characteristic.Properties.READ
WRITE = Characteristic.Properties.WRITE
NOTIFY = Characteristic.Properties.NOTIFY
INDICATE = Characteristic.Properties.INDICATE
READABLE = Characteristic.READABLE
WRITEABLE = Characteristic.WRITEABLE
READ_WRITE = Characteristic.READABLE | Characteristic.WRITEABLE



@dataclass
class DeviceClock:
    """The emulated device's wall clock: gateway time + `offset` in `timezone`, or unset (year 0)."""

    offset: timedelta = timedelta(0)
    unset: bool = False
    writable: bool = True
    timezone: tzinfo = UTC
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    writes: list[datetime] = field(default_factory=list)

    def wall_time(self) -> datetime | None:
        if self.unset:
            return None
        return (self.now() + self.offset).astimezone(self.timezone).replace(tzinfo=None)

    def current_time_value(self) -> bytes:
        wall = self.wall_time()
        exact = ExactTime256(DeviceTime.unknown()) if wall is None else ExactTime256.from_datetime(wall)
        return encode_current_time(CurrentTime(exact))

    def set_from(self, value: bytes) -> None:
        if not self.writable:
            raise ATT_Error(ErrorCode.WRITE_NOT_PERMITTED)
        try:
            wall = decode_current_time(value).wall_time
        except DecodeError:
            wall = None
        if wall is None:
            raise ATT_Error(0x80)  # "data field ignored" (CTS application error)
        device_now = wall.replace(tzinfo=self.timezone)
        self.offset = device_now - self.now()
        self.unset = False
        self.writes.append(device_now)


@dataclass(frozen=True)
class DeviceInfo:
    manufacturer: str = "Healthhut Emulation"
    model: str = "EMU-1"
    serial: str = "SN0001"
    firmware: str = "1.0.0"
    hardware: str = "A"
    system_id: str | None = None    # default: derived from the Bluetooth address (OUI + FFFE + device half)
    battery: int = 87


def device_information_service(info: DeviceInfo, address: str) -> Service:
    def text(uuid: str, value: str) -> Characteristic:
        # Padding with NUL as many real devices do; the driver must trim it.
        return Characteristic(uuid, READ, READABLE, value.encode() + b"\x00")

    return Service("180A", [text("2A29", info.manufacturer), text("2A24", info.model), text("2A25", info.serial),
                            text("2A26", info.firmware), text("2A27", info.hardware),
                            Characteristic("2A23", READ, READABLE, encode_system_id(
                                info.system_id or system_id_from_address(address)))])


def battery_service(info: DeviceInfo) -> Service:
    return Service("180F", [Characteristic("2A19", READ | NOTIFY, READABLE, encode_battery_level(info.battery))])


def current_time_service(clock: DeviceClock) -> tuple[Service, Characteristic]:
    properties = READ | NOTIFY | (WRITE if clock.writable else Characteristic.Properties(0))
    current = Characteristic("2A2B", properties, READ_WRITE,
                             CharacteristicValue(read=lambda _c: clock.current_time_value(),
                                                 write=lambda _c, value: clock.set_from(value)))
    return Service("1805", [current]), current


def refusing_cccd() -> Descriptor:
    """A CCCD whose writes fail with Insufficient Authentication, as an unbonded Omron cuff answers."""

    def refuse(_connection: Connection, _value: bytes) -> None:
        raise ATT_Error(ErrorCode.INSUFFICIENT_AUTHENTICATION)

    return Descriptor("2902", READ_WRITE, CharacteristicValue(read=lambda _c: b"\x00\x00", write=refuse))


SendRecord = Callable[[bytes], Awaitable[None]]


class RacpServer:
    """The device side of Record Access Control Point over a list of (sequence, indication) records."""

    def __init__(self, records: Callable[[], Sequence[tuple[int, bytes]]], send_record: SendRecord,
                 send_response: SendRecord, *, sequence_filter: bool = True) -> None:
        self._records = records
        self._send_record = send_record
        self._send_response = send_response
        self._sequence_filter = sequence_filter
        self._task: asyncio.Task[None] | None = None
        self.disconnect_after: int | None = None
        self.on_disconnect_request: Callable[[], Awaitable[None]] | None = None
        self.duplicate = False
        self.delay = 0.0
        self.requests: list[bytes] = []

    def misbehave(self, behaviour: Misbehaviour, disconnect: Callable[[], Awaitable[None]]) -> None:
        """Take a device's download knobs: drop the link (via `disconnect`), duplicate or delay records."""
        self.disconnect_after = behaviour.disconnect_after
        self.on_disconnect_request = disconnect
        self.duplicate = behaviour.duplicate_records
        self.delay = behaviour.indication_delay

    def _select(self, request: RacpRequest) -> list[tuple[int, bytes]] | RacpResponseValue:
        records = list(self._records())
        if request.operator is RacpOperator.ALL_RECORDS:
            return records
        if request.operator is RacpOperator.GREATER_OR_EQUAL:
            if not self._sequence_filter:
                return RacpResponseValue.OPERATOR_NOT_SUPPORTED
            if request.filter_type != 0x01 or len(request.sequence_numbers) != 1:
                return RacpResponseValue.OPERAND_NOT_SUPPORTED
            return [r for r in records if r[0] >= request.sequence_numbers[0]]
        if request.operator is RacpOperator.NULL:
            return RacpResponseValue.INVALID_OPERATOR
        return RacpResponseValue.OPERATOR_NOT_SUPPORTED

    def on_write(self, _connection: Connection, value: bytes) -> None:
        self.requests.append(bytes(value))
        try:
            request = decode_racp(bytes(value))
        except DecodeError:
            request = None
        if not isinstance(request, RacpRequest):
            op = value[0] if value else 0
            self._start(self._respond(op, RacpResponseValue.OP_CODE_NOT_SUPPORTED))
            return
        if self._task is not None and not self._task.done():
            if request.op_code is not RacpOpCode.ABORT_OPERATION:
                raise ATT_Error(ErrorCode.PROCEDURE_ALREADY_IN_PROGRESS)
            self._task.cancel()
        self._start(self._run(request))

    def _start(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await asyncio.sleep(0)  # the write response goes out before the first indication
                await work
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dropped link mid-procedure ends it; nothing more to send
                logger.debug("RACP procedure ended: %s", type(exc).__name__)

        self._task = asyncio.get_running_loop().create_task(guarded())

    async def _respond(self, opcode: int, value: RacpResponseValue) -> None:
        await self._send_response(encode_racp(RacpResponseCode(opcode, value)))

    async def _run(self, request: RacpRequest) -> None:
        opcode = request.op_code
        if opcode is RacpOpCode.ABORT_OPERATION:
            await self._respond(opcode, RacpResponseValue.SUCCESS)
            return
        if opcode not in (RacpOpCode.REPORT_STORED_RECORDS, RacpOpCode.REPORT_NUMBER_OF_RECORDS):
            await self._respond(opcode, RacpResponseValue.OP_CODE_NOT_SUPPORTED)
            return
        selected = self._select(request)
        if isinstance(selected, RacpResponseValue):
            await self._respond(opcode, selected)
            return
        if opcode is RacpOpCode.REPORT_NUMBER_OF_RECORDS:
            await self._send_response(encode_racp(RacpNumberOfRecords(len(selected))))
            return
        if not selected:
            await self._respond(opcode, RacpResponseValue.NO_RECORDS_FOUND)
            return
        for index, (_sequence, frame) in enumerate(selected):
            if self.disconnect_after is not None and index == self.disconnect_after:
                if self.on_disconnect_request is not None:
                    await self.on_disconnect_request()
                return
            if self.delay:
                await asyncio.sleep(self.delay)
            await self._send_record(frame)
            if self.duplicate:
                await self._send_record(frame)
        await self._respond(opcode, RacpResponseValue.SUCCESS)

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    async def wait_idle(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class Misbehaviour:
    """Knobs every emulated health device offers; the defaults are a well-behaved device."""

    truncate_frames: bool = False         # every measurement/record indication loses its tail
    malformed_records: frozenset[int] = frozenset()  # stored records (by sequence) sent as garbage
    disconnect_after: int | None = None   # drop the link after this many records of a download
    duplicate_records: bool = False       # every stored record is indicated twice
    indication_delay: float = 0.0         # seconds before each stored-record indication
    refuse_cccd: bool = False             # CCCD writes on the measurement characteristics fail

    def frame(self, value: bytes) -> bytes:
        return value[: max(1, len(value) // 2)] if self.truncate_frames else value

    def descriptors(self) -> list[Descriptor]:
        return [refusing_cccd()] if self.refuse_cccd else []


class HealthPeripheral(EmulatedPeripheral):
    """An emulated health device: its profile services plus Current Time, Device Information and Battery.

    Frames queued in `pending` are indicated on `pending_characteristic` as soon as a central subscribes,
    as thermometers and scales push stored measurements right after the CCCD write.
    """

    default_info = DeviceInfo()

    def __init__(self, address: str, *, clock: DeviceClock | None = None, info: DeviceInfo | None = None,
                 behaviour: Misbehaviour | None = None, name: str | None = None) -> None:
        super().__init__(address, name=name)
        self.clock = clock or DeviceClock()
        self.info = info or self.default_info
        self.behaviour = behaviour or Misbehaviour()
        self.pending: list[bytes] = []
        self.pending_characteristic: Characteristic[bytes] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def profile_services(self) -> list[Service]:
        raise NotImplementedError

    def services(self) -> list[Service]:
        cts, self.current_time = current_time_service(self.clock)
        services = self.profile_services()
        if self.pending_characteristic is not None:
            self.pending_characteristic.on("subscription", self._on_subscription)
        return [*services, cts, device_information_service(self.info, self.address), battery_service(self.info)]

    def _on_subscription(self, _bearer: object, _notify: bool, indicate: bool) -> None:
        if indicate and self.pending and not self._tasks:  # one flush at a time (CCCD may be written twice)
            task = asyncio.get_running_loop().create_task(self._flush_pending())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush_pending(self) -> None:
        assert self.pending_characteristic is not None
        await asyncio.sleep(0.01)  # after the CCCD write response
        for index, frame in enumerate(list(self.pending)):
            if self.behaviour.disconnect_after is not None and index == self.behaviour.disconnect_after:
                await self.disconnect()
                return
            if self.behaviour.indication_delay:
                await asyncio.sleep(self.behaviour.indication_delay)
            try:
                await self.send(self.pending_characteristic, frame)
            except Exception as exc:  # link dropped mid-flush: the frame stays queued for next time
                logger.debug("stored measurement not delivered: %s", type(exc).__name__)
                return
            if not self.behaviour.duplicate_records:
                self.pending.remove(frame)  # confirmed: devices that delete what they uploaded

    async def send(self, characteristic: Characteristic[bytes], frame: bytes, *, indicate: bool = True) -> None:
        """Indicate (or notify) a frame, truncated when the misbehaviour asks for it."""
        assert self.device is not None
        value = self.behaviour.frame(frame)
        if indicate:
            await self.device.indicate_subscribers(characteristic, value)
        else:
            await self.device.notify_subscribers(characteristic, value)
