"""An emulated Bluetooth blood-pressure cuff (BPS 0x1810) with stored records, RACP, CTS, DIS and battery."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from bumble.gatt import Characteristic, CharacteristicValue, Service

from healthhut.drivers.codecs.blood_pressure import (
    BloodPressureFeature,
    BloodPressureFeatureBits,
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    encode_blood_pressure_feature,
    encode_blood_pressure_measurement,
    encode_intermediate_cuff_pressure,
)
from healthhut.drivers.codecs.bp_record import BloodPressureRecord, encode_blood_pressure_record
from healthhut.drivers.emulators.ble_common import (
    INDICATE,
    NOTIFY,
    READ,
    READABLE,
    WRITE,
    WRITEABLE,
    DeviceClock,
    DeviceInfo,
    HealthPeripheral,
    Misbehaviour,
    RacpServer,
)

ERR_FRAME = bytes.fromhex("16ff07ff07ff07e80706170e230aff070000")  # BPM-3: the frame of a cuff showing "Err"


@dataclass
class CuffBehaviour(Misbehaviour):
    """Misbehaviour knobs (see Misbehaviour) plus the features the cuff claims."""

    features: BloodPressureFeatureBits = field(default_factory=lambda: BloodPressureFeatureBits(0x1F))


class BloodPressureCuff(HealthPeripheral):
    """Stored records are numbered from `first_sequence`; `measure()` indicates a new live measurement."""

    name = "EMU-BP"
    advertised_services = ("1810",)
    default_info = DeviceInfo(model="EMU-BP1", serial="BP0001")
    behaviour: CuffBehaviour

    def __init__(self, address: str, *, records: Sequence[BloodPressureMeasurement] = (),
                 first_sequence: int = 1, clock: DeviceClock | None = None, info: DeviceInfo | None = None,
                 behaviour: CuffBehaviour | None = None, name: str | None = None) -> None:
        super().__init__(address, clock=clock, info=info, behaviour=behaviour or CuffBehaviour(), name=name)
        self.records: list[tuple[int, BloodPressureMeasurement]] = [
            (first_sequence + i, m) for i, m in enumerate(records)]
        self.racp = RacpServer(self._stored_frames, self._send_record, self._send_racp)
        self.racp.misbehave(self.behaviour, self.disconnect)

    def _stored_frames(self) -> list[tuple[int, bytes]]:
        frames = []
        for sequence, measurement in self.records:
            if sequence in self.behaviour.malformed_records:
                frames.append((sequence, bytes([0x03]) + sequence.to_bytes(2, "little") + b"\x35\x2a\x1f"))
                continue
            record = encode_blood_pressure_record(BloodPressureRecord(sequence, measurement))
            frames.append((sequence, self.behaviour.frame(record)))
        return frames

    def add_record(self, measurement: BloodPressureMeasurement) -> int:
        sequence = self.records[-1][0] + 1 if self.records else 1
        self.records.append((sequence, measurement))
        return sequence

    def profile_services(self) -> list[Service]:
        self.measurement = Characteristic("2A35", INDICATE, READABLE, b"", descriptors=self.behaviour.descriptors())
        self.cuff = Characteristic("2A36", NOTIFY, READABLE, b"")
        feature = encode_blood_pressure_feature(BloodPressureFeature(self.behaviour.features))
        self.record = Characteristic("2B36", INDICATE, READABLE, b"", descriptors=self.behaviour.descriptors())
        self.racp_char: Characteristic[bytes] = Characteristic("2A52", WRITE | INDICATE, WRITEABLE,
                                                               CharacteristicValue(write=self.racp.on_write))
        return [Service("1810", [self.measurement, self.cuff, Characteristic("2A49", READ, READABLE, feature),
                                 self.record, self.racp_char])]

    def on_disconnect(self) -> None:
        self.racp.cancel()

    async def _send_record(self, frame: bytes) -> None:
        assert self.device is not None
        await self.device.indicate_subscribers(self.record, frame)

    async def _send_racp(self, frame: bytes) -> None:
        assert self.device is not None
        await self.device.indicate_subscribers(self.racp_char, frame)

    async def measure(self, measurement: BloodPressureMeasurement | None, *, store: bool = True) -> None:
        """Indicate a finished measurement (None: the "Err" frame after body movement) and store it."""
        if measurement is None:
            await self.send(self.measurement, ERR_FRAME)
            return
        if store:
            self.add_record(measurement)
        await self.send(self.measurement, encode_blood_pressure_measurement(measurement))

    async def inflate(self, pressures: Sequence[int]) -> None:
        """Notify the live cuff pressure while inflating (display data only)."""
        assert self.device is not None
        for pressure in pressures:
            value = encode_intermediate_cuff_pressure(IntermediateCuffPressure(Decimal(pressure)))
            await self.device.notify_subscribers(self.cuff, value)
            await asyncio.sleep(0)
