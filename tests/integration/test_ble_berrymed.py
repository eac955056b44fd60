"""End to end through bleak over bumble: the BerryMed BCI driver against an emulated transparent-UART oximeter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import pytest
from ble_support import SteppingClock, collect

from healthhut.drivers.ble.ble_berrymed import SERVICE_UUID, BleBerryMedDriver
from healthhut.drivers.ble.transport_ble import BleBackend, BleTransport, scan
from healthhut.drivers.codecs.berrymed import decode_packet
from healthhut.drivers.emulators.ble_berrymed import BerryMedOximeter
from healthhut.drivers.emulators.ble_common import Misbehaviour
from healthhut.drivers.emulators.ble_rig import BleRig, start_rig
from healthhut.errors import DeviceError
from healthhut.readings import AbsentReason, Metric, ReadingKind, StatusFlag

ADDRESS = "00:A0:50:00:00:01"
GOOD = decode_packet(bytes.fromhex("C758094462"))      # beep, pleth 88, PR 68, SpO2 98
HIGH_PULSE = decode_packet(bytes.fromhex("852844485E"))  # PR 200, SpO2 94
NO_FINGER = decode_packet(bytes.fromhex("9F00507F7F"))


# Each gateway-clock read (one per notification) advances 40 ms: four 5-byte packets of a 100/s stream
# per 20-byte notification.
TICK_PER_NOTIFICATION = timedelta(milliseconds=40)


@pytest.fixture
async def rig() -> AsyncIterator[BleRig]:
    rig = await start_rig()
    yield rig
    await rig.close()


async def connect(rig: BleRig, device: BerryMedOximeter) -> BleBerryMedDriver:
    await rig.add(device)
    found = await scan(seconds=0.2, service_uuids=[SERVICE_UUID], backend=BleBackend(**rig.backend()))
    assert [a.name for a in found] == ["BerryMed"]
    connection = await BleTransport(ADDRESS, backend=BleBackend(**rig.backend()), scan_timeout=2).connect()
    driver = BleBerryMedDriver(connection, timezone=UTC, now=SteppingClock(TICK_PER_NOTIFICATION))
    await driver.start()
    return driver


async def test_unaligned_notifications_and_noise_are_resynchronised(rig: BleRig) -> None:
    oximeter = BerryMedOximeter(ADDRESS, chunk=20)
    driver = await connect(rig, oximeter)
    assert driver.battery == 64 and driver.clock is not None and not driver.clock.present
    pending = asyncio.ensure_future(collect(driver.live(count=8, within=2)))
    await asyncio.sleep(0.05)
    await oximeter.stream([GOOD] * 300 + [HIGH_PULSE] * 300 + [NO_FINGER] * 300, garbage_every=10)
    readings = await pending      # one a second out of ~900 packets
    pulses = [r.values[Metric.PULSE_RATE].value for r in readings]
    assert [p for i, p in enumerate(pulses) if i == 0 or pulses[i - 1] != p] == [68, 200, None]
    assert readings[0].values[Metric.SPO2].value == 98
    assert readings[-1].values[Metric.SPO2].absent is AbsentReason.SENSOR_OFF
    assert StatusFlag.FINGER_OUT in readings[-1].status


async def test_series_instead_of_a_record_per_packet(rig: BleRig) -> None:
    oximeter = BerryMedOximeter(ADDRESS)
    driver = await connect(rig, oximeter)
    pending = asyncio.ensure_future(driver.series(samples=300, within=2))
    await asyncio.sleep(0.05)
    await oximeter.stream([GOOD] * 200 + [NO_FINGER] * 100)
    series = await pending
    assert series.kind is ReadingKind.OXIMETRY_SERIES
    assert series.series[Metric.SPO2].samples == (98.0, 98.0, None)


async def test_version_command_and_truncated_packets(rig: BleRig) -> None:
    oximeter = BerryMedOximeter(ADDRESS, behaviour=Misbehaviour(truncate_frames=True))
    driver = await connect(rig, oximeter)
    assert await driver.software_version() == "V1.4.2"
    assert oximeter.commands == [b"\xff"]
    pending = asyncio.ensure_future(collect(driver.live(count=1, within=0.5)))
    await asyncio.sleep(0.05)
    await oximeter.stream([GOOD] * 20)        # every packet cut short: nothing valid
    with pytest.raises(DeviceError):
        await pending


async def test_disconnect_ends_the_stream(rig: BleRig) -> None:
    oximeter = BerryMedOximeter(ADDRESS)
    driver = await connect(rig, oximeter)
    pending = asyncio.ensure_future(collect(driver.live(count=5, within=5)))
    await asyncio.sleep(0.05)
    await oximeter.disconnect()
    with pytest.raises(DeviceError):
        await pending


async def test_refused_cccd_then_reconnect(rig: BleRig) -> None:
    from healthhut.drivers.ble.transport_ble import ADVICE_BONDED

    oximeter = BerryMedOximeter(ADDRESS, behaviour=Misbehaviour(refuse_cccd=True))
    driver = await connect(rig, oximeter)
    with pytest.raises(DeviceError) as caught:
        await anext(driver.live(count=1, within=1))
    assert caught.value.advice == ADVICE_BONDED
    await driver.connection.close()
    connection = await BleTransport(ADDRESS, backend=BleBackend(**rig.backend()), scan_timeout=2).connect()
    assert connection.is_connected
    await connection.close()
