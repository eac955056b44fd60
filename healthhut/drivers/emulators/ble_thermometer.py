"""An emulated Health Thermometer (0x1809): measurements queued while offline are indicated on subscribe."""

from __future__ import annotations

from collections.abc import Sequence

from bumble.gatt import Characteristic, Service

from healthhut.drivers.codecs.thermometer import TemperatureMeasurement, encode_temperature_measurement
from healthhut.drivers.emulators.ble_common import (
    INDICATE,
    NOTIFY,
    READ,
    READABLE,
    DeviceClock,
    DeviceInfo,
    HealthPeripheral,
    Misbehaviour,
)

NRES_TEMPERATURE = bytes.fromhex("040000800001")  # TEMP-3: NRes, armpit


class Thermometer(HealthPeripheral):
    name = "EMU-THERMO"
    advertised_services = ("1809",)
    default_info = DeviceInfo(model="EMU-TH1", serial="TH0001")

    def __init__(self, address: str, *, stored: Sequence[TemperatureMeasurement] = (),
                 clock: DeviceClock | None = None, behaviour: Misbehaviour | None = None,
                 name: str | None = None, temperature_type: int = 3) -> None:
        super().__init__(address, clock=clock, behaviour=behaviour, name=name)
        self.pending = [encode_temperature_measurement(m) for m in stored]
        self.temperature_type = temperature_type

    def profile_services(self) -> list[Service]:
        self.temperature = Characteristic("2A1C", INDICATE, READABLE, b"",
                                          descriptors=self.behaviour.descriptors())
        self.intermediate = Characteristic("2A1E", NOTIFY, READABLE, b"")
        self.pending_characteristic = self.temperature
        return [Service("1809", [self.temperature, self.intermediate,
                                 Characteristic("2A1D", READ, READABLE, bytes([self.temperature_type]))])]

    async def measure(self, measurement: TemperatureMeasurement | None) -> None:
        """Indicate a measurement (None: the NRes frame of a failed reading)."""
        frame = NRES_TEMPERATURE if measurement is None else encode_temperature_measurement(measurement)
        await self.send(self.temperature, frame)

    async def warm_up(self, values: Sequence[TemperatureMeasurement]) -> None:
        for value in values:
            await self.send(self.intermediate, encode_temperature_measurement(value), indicate=False)
