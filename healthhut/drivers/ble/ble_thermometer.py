"""Health Thermometer (0x1809) driver: temperature indications (stored ones arrive right after subscribing)."""

from __future__ import annotations

from collections.abc import Mapping

from healthhut.drivers.ble.base_driver import BleHealthDriver
from healthhut.drivers.codecs.base import Codec
from healthhut.drivers.codecs.thermometer import TemperatureMeasurementCodec

SERVICE_UUID = "1809"
TEMPERATURE_UUID = "2a1c"
INTERMEDIATE_UUID = "2a1e"


class BleThermometerDriver(BleHealthDriver):
    name = "ble.thermometer"
    service_uuid = SERVICE_UUID
    live_characteristics: Mapping[str, Codec | None] = {
        TEMPERATURE_UUID: TemperatureMeasurementCodec(),
        INTERMEDIATE_UUID: None,   # intermediate temperature: display only
    }
