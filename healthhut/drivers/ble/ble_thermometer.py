"""Health Thermometer (0x1809) driver: temperature indications (stored ones arrive right after subscribing).

A measurement without its own Temperature Type takes the body site from the Temperature Type
characteristic (0x2A1D), read once at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from healthhut.drivers.ble.base_driver import BleHealthDriver
from healthhut.drivers.ble.gatt_common import optional_read
from healthhut.drivers.codecs.base import Codec
from healthhut.drivers.codecs.thermometer import TemperatureMeasurementCodec, body_site, decode_temperature_type
from healthhut.errors import DecodeError
from healthhut.readings import Reading

SERVICE_UUID = "1809"
TEMPERATURE_UUID = "2a1c"
TEMPERATURE_TYPE_UUID = "2a1d"
INTERMEDIATE_UUID = "2a1e"


class BleThermometerDriver(BleHealthDriver):
    name = "ble.thermometer"
    service_uuid = SERVICE_UUID
    live_characteristics: Mapping[str, Codec | None] = {
        TEMPERATURE_UUID: TemperatureMeasurementCodec(),
        INTERMEDIATE_UUID: None,   # intermediate temperature: display only
    }
    temperature_type: int | None = None

    async def start(self, *, set_clock: bool = True) -> None:
        await super().start(set_clock=set_clock)
        raw = await optional_read(self.connection, TEMPERATURE_TYPE_UUID)
        try:
            self.temperature_type = decode_temperature_type(raw) if raw is not None else None
        except DecodeError:
            self.temperature_type = None

    def decode_readings(self, codec: Codec, frame: bytes) -> list[Reading]:
        site = body_site(self.temperature_type)
        return [replace(r, body_site=site) if r.body_site is None and site else r
                for r in super().decode_readings(codec, frame)]
