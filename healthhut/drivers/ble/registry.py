"""BLE driver names → classes (imported lazily), the services that identify them, and codecs per UUID."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from healthhut.drivers.ble.transport_ble import short_uuid
from healthhut.errors import UsageError


@dataclass(frozen=True, slots=True)
class BleDriverInfo:
    name: str
    target: str          # "module:Class"
    service_uuid: str    # full 128-bit form
    profile: str         # what staff see in `devices scan`


DRIVERS: tuple[BleDriverInfo, ...] = (
    BleDriverInfo("ble.blood-pressure", "healthhut.drivers.ble.ble_blood_pressure:BleBloodPressureDriver",
                  short_uuid("1810"), "Blood Pressure (0x1810)"),
    BleDriverInfo("ble.pulse-oximeter", "healthhut.drivers.ble.ble_pulse_oximeter:BlePulseOximeterDriver",
                  short_uuid("1822"), "Pulse Oximeter (0x1822)"),
    BleDriverInfo("ble.thermometer", "healthhut.drivers.ble.ble_thermometer:BleThermometerDriver",
                  short_uuid("1809"), "Health Thermometer (0x1809)"),
    BleDriverInfo("ble.weight-scale", "healthhut.drivers.ble.ble_weight_scale:BleWeightScaleDriver",
                  short_uuid("181d"), "Weight Scale (0x181D)"),
    BleDriverInfo("ble.berrymed", "healthhut.drivers.ble.ble_berrymed:BleBerryMedDriver",
                  "49535343-fe7d-4ae5-8fa9-9fafd205e455", "BerryMed BCI oximeter (transparent UART)"),
    BleDriverInfo("ble.ring-oximeter", "healthhut.drivers.ble.ble_ring_oximeter:BleRingOximeterDriver",
                  "14839ac4-7d7e-415c-9a42-167340cf2339", "Viatom/Wellue ring oximeter"),
)

# Characteristic UUID → codec name, for `devices sniff` and its capture lines.
CODEC_BY_UUID: dict[str, str] = {
    short_uuid("2a35"): "bls.measurement", short_uuid("2a36"): "bls.intermediate-cuff",
    short_uuid("2b36"): "bls.record", short_uuid("2a52"): "racp", short_uuid("2a5e"): "plx.spot-check",
    short_uuid("2a5f"): "plx.continuous", short_uuid("2a1c"): "hts.temperature",
    short_uuid("2a9d"): "wss.weight", short_uuid("2a2b"): "cts.current-time",
    "49535343-1e4d-4bd9-ba61-23c647249616": "berrymed.bci",
    "0734594a-a8e7-4b1a-a6b1-cd5243059a57": "viatom.frame",
}


def driver_names() -> list[str]:
    return [d.name for d in DRIVERS]


def driver_info(name: str) -> BleDriverInfo:
    for info in DRIVERS:
        if info.name == name:
            return info
    raise UsageError(f"unknown BLE driver {name!r}; known: {', '.join(driver_names())}")


def driver_for_services(uuids: Iterable[str]) -> BleDriverInfo | None:
    """The driver for the first recognised service (advertised or discovered)."""
    present = {short_uuid(u) for u in uuids}
    for info in DRIVERS:
        if info.service_uuid in present:
            return info
    return None


def driver_class(name: str) -> Any:
    module_name, _, class_name = driver_info(name).target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
