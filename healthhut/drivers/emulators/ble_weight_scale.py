"""An emulated Weight Scale (0x181D): measurements queued while offline are indicated on subscribe."""

from __future__ import annotations

from collections.abc import Sequence

from bumble.gatt import Characteristic, Service

from healthhut.drivers.codecs.weight_scale import (
    WeightMeasurement,
    WeightScaleFeature,
    encode_weight_measurement,
    encode_weight_scale_feature,
)
from healthhut.drivers.emulators.ble_common import (
    INDICATE,
    READ,
    READABLE,
    DeviceClock,
    DeviceInfo,
    HealthPeripheral,
    Misbehaviour,
)

FAILED_WEIGHT = bytes.fromhex("00ffff")  # WS-3: measurement unsuccessful


class WeightScale(HealthPeripheral):
    name = "EMU-SCALE"
    advertised_services = ("181D",)
    default_info = DeviceInfo(model="EMU-WS1", serial="WS0001")

    def __init__(self, address: str, *, stored: Sequence[WeightMeasurement] = (),
                 clock: DeviceClock | None = None, behaviour: Misbehaviour | None = None,
                 name: str | None = None) -> None:
        super().__init__(address, clock=clock, behaviour=behaviour, name=name)
        self.pending = [encode_weight_measurement(m) for m in stored]

    def profile_services(self) -> list[Service]:
        self.weight = Characteristic("2A9D", INDICATE, READABLE, b"", descriptors=self.behaviour.descriptors())
        self.pending_characteristic = self.weight
        feature = encode_weight_scale_feature(WeightScaleFeature(0x1 | 0x4 | (7 << 3)))  # stamp, BMI, 5 g
        return [Service("181D", [self.weight, Characteristic("2A9E", READ, READABLE, feature)])]

    async def measure(self, measurement: WeightMeasurement | None) -> None:
        """Indicate a weighing (None: 0xFFFF, "measurement unsuccessful")."""
        await self.send(self.weight, FAILED_WEIGHT if measurement is None else encode_weight_measurement(measurement))
