"""BerryMed BCI over USB-serial against its pty emulator: live readings, finger out, versions, garbage, unplug."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from pathlib import Path

from healthhut.drivers.emulators.serial_berrymed import BerrymedBciEmulator
from healthhut.drivers.emulators.serial_cms50 import OximeterScript
from healthhut.drivers.emulators.serial_pty import SerialFaults
from healthhut.drivers.serial_oximeter import BerrymedOximeter, OximeterOptions
from healthhut.drivers.serial_session import DriverContext
from healthhut.readings import AbsentReason, DeviceIdentity, Metric, Reading, StatusFlag, Transport

OPTIONS = OximeterOptions(live_interval=0, watchdog=2.0)


def context(link: Path) -> DriverContext:
    return DriverContext(DeviceIdentity(Transport.SERIAL, address=str(link), model="BM1000"), timezone=UTC)


async def take(oximeter: BerrymedOximeter, n: int) -> list[Reading]:
    out: list[Reading] = []
    async for reading in oximeter.readings():
        out.append(reading)
        if len(out) >= n:
            break
    return out


async def test_live_readings_with_finger_out(tmp_path: Path) -> None:
    script = OximeterScript(spo2=95, pulse_rate=200, finger_out=[range(0, 1000)])
    async with BerrymedBciEmulator(tmp_path / "tty", script=script, rate_hz=400) as device:  # noqa: SIM117 - the inner context needs device.path
        async with BerrymedOximeter(device.path, context(tmp_path / "tty"), options=OPTIONS) as oximeter:
            readings = await take(oximeter, 20)
            device.script.finger_out = []
            readings += await take(oximeter, 200)
    out = [r for r in readings if StatusFlag.FINGER_OUT in r.status]
    assert out and all(r.values[Metric.PULSE_RATE].absent is AbsentReason.SENSOR_OFF for r in out)
    good = [r for r in readings if not r.status]
    assert good and {r.values[Metric.PULSE_RATE].value for r in good} == {Decimal(200)}   # bit 7 carried


async def test_versions(tmp_path: Path) -> None:
    async with BerrymedBciEmulator(tmp_path / "tty", rate_hz=100, software="V1.4-2024") as device:
        oximeter = BerrymedOximeter(device.path, context(tmp_path / "tty"), options=OPTIONS)
        versions = await oximeter.versions()
        await oximeter.close()
    assert versions == {"software": "V1.4-2024", "hardware": "H2.0"}


async def test_resync_and_unplug(tmp_path: Path) -> None:
    faults = SerialFaults(garbage_every=4, garbage_bytes=3, split_frames=True, unplug_after_frames=150)
    async with BerrymedBciEmulator(tmp_path / "tty", rate_hz=400, faults=faults) as device:

        async def sleep(delay: float) -> None:
            if not device.plugged.is_set():
                await device.replug()

        async with BerrymedOximeter(device.path, context(tmp_path / "tty"), options=OPTIONS,
                                    sleep=sleep) as oximeter:
            readings = await take(oximeter, 300)
            assert oximeter.session is not None and oximeter.session.reopens == 1
            assert oximeter.discarded > 0
    # BCI has no checksum: 3 garbage bytes can still look like the start of a packet that the next head cuts
    # short, so every Reading that came through is a real one.
    assert {r.values[Metric.SPO2].value for r in readings} == {Decimal(97)}
