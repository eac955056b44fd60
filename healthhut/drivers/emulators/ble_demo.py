"""Ready-made emulated BLE devices for `healthhut devices … --emulate NAME`, each with a little activity loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal

from healthhut.drivers.codecs.berrymed import BciSample, decode_packet
from healthhut.drivers.codecs.blood_pressure import BloodPressureMeasurement
from healthhut.drivers.codecs.gatt_time import DeviceTime
from healthhut.drivers.codecs.pulse_oximetry import ContinuousMeasurement, SpO2PulseRate, SpotCheckMeasurement
from healthhut.drivers.codecs.thermometer import TemperatureMeasurement
from healthhut.drivers.codecs.viatom_file import ViatomFileHeader, ViatomRecord, encode_viatom_file
from healthhut.drivers.codecs.weight_scale import WeightMeasurement
from healthhut.drivers.emulators.ble_berrymed import BerryMedOximeter
from healthhut.drivers.emulators.ble_blood_pressure import BloodPressureCuff
from healthhut.drivers.emulators.ble_common import DeviceClock
from healthhut.drivers.emulators.ble_pulse_oximeter import PulseOximeter
from healthhut.drivers.emulators.ble_rig import EmulatedPeripheral
from healthhut.drivers.emulators.ble_ring_oximeter import RingOximeter
from healthhut.drivers.emulators.ble_thermometer import Thermometer
from healthhut.drivers.emulators.ble_weight_scale import WeightScale

DEFAULT_ADDRESSES = {"bp": "C0:DE:00:00:00:01", "plx": "C0:DE:00:00:00:02", "thermometer": "C0:DE:00:00:00:03",
                     "scale": "C0:DE:00:00:00:04", "berrymed": "00:A0:50:DE:00:05", "ring": "C0:DE:00:00:00:06"}


def _bp(address: str) -> BloodPressureCuff:
    records = [BloodPressureMeasurement(Decimal(118 + i), Decimal(78), Decimal(91),
                                        timestamp=DeviceTime(2024, 6, 20 + i, 8, 30, 0), pulse_rate=Decimal(70))
               for i in range(3)]
    return BloodPressureCuff(address, records=records, clock=DeviceClock(offset=timedelta(minutes=-4)))


def _ring(address: str) -> RingOximeter:
    start = datetime(2024, 6, 23, 22, 30, 0)
    records = [ViatomRecord(93 + i % 4, 58 + i % 6, i % 3, 0) for i in range(900)]
    header = ViatomFileHeader(3, 0, start, 0, 3600, 94, 91, 2, 1, 0, 0, 0, Decimal("9.1"), 0)
    return RingOximeter(address, files={start.strftime("%Y%m%d%H%M%S"): encode_viatom_file(header, records)})


FACTORIES: dict[str, Callable[[str], EmulatedPeripheral]] = {
    "bp": _bp, "plx": lambda a: PulseOximeter(a), "thermometer": lambda a: Thermometer(a),
    "scale": lambda a: WeightScale(a), "berrymed": lambda a: BerryMedOximeter(a), "ring": _ring}


def emulator(name: str, address: str | None = None) -> EmulatedPeripheral:
    from healthhut.errors import UsageError

    if name not in FACTORIES:
        raise UsageError(f"unknown emulator {name!r}; known: {', '.join(FACTORIES)}")
    return FACTORIES[name](address or DEFAULT_ADDRESSES[name])


async def activity(device: EmulatedPeripheral, *, interval: float = 0.3) -> None:
    """What the emulated device does while connected: measure now and then (cancel to stop)."""
    step: Callable[[int], Awaitable[None]] | None = None
    if isinstance(device, BloodPressureCuff):
        async def step(i: int) -> None:
            await device.measure(BloodPressureMeasurement(Decimal(120 + i % 7), Decimal(80), Decimal(93),
                                                          pulse_rate=Decimal(72)))
    elif isinstance(device, PulseOximeter):
        async def step(i: int) -> None:
            await device.spot_check(SpotCheckMeasurement(Decimal(96 + i % 3), Decimal(64)))
            await device.stream([ContinuousMeasurement(SpO2PulseRate(Decimal(97), Decimal(63)))])
    elif isinstance(device, Thermometer):
        async def step(i: int) -> None:
            await device.measure(TemperatureMeasurement(Decimal("36.6") + Decimal(i % 5) / 10))
    elif isinstance(device, WeightScale):
        async def step(i: int) -> None:
            await device.measure(WeightMeasurement(Decimal("70.000") + i))
    elif isinstance(device, BerryMedOximeter):
        packet = decode_packet(bytes.fromhex("C758094462"))
        assert isinstance(packet, BciSample)

        async def step(i: int) -> None:
            await device.stream([packet] * 30)
    if step is None:
        return
    i = 0
    while True:
        await asyncio.sleep(interval)
        if device.connection is not None:
            try:
                await step(i)
            except Exception:  # the central went away between the check and the send
                await asyncio.sleep(0)
            i += 1
