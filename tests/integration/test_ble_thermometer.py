"""End to end through bleak over bumble: the thermometer driver against an emulated Health Thermometer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from ble_support import collect

from healthhut.drivers.ble.ble_thermometer import BleThermometerDriver
from healthhut.drivers.ble.transport_ble import BleBackend, BleTransport, scan
from healthhut.drivers.codecs.gatt_time import DeviceTime
from healthhut.drivers.codecs.thermometer import TemperatureMeasurement
from healthhut.drivers.emulators.ble_common import DeviceClock, Misbehaviour
from healthhut.drivers.emulators.ble_rig import BleRig, start_rig
from healthhut.drivers.emulators.ble_thermometer import Thermometer
from healthhut.errors import DeviceError
from healthhut.readings import AbsentReason, Metric, Reading, TimeSource, Unit

ADDRESS = "C0:30:00:00:00:01"


def temperature(value: str, minute: int = 0) -> TemperatureMeasurement:
    return TemperatureMeasurement(Decimal(value), timestamp=DeviceTime(2024, 6, 23, 14, minute, 10),
                                  temperature_type=3)


@pytest.fixture
async def rig() -> AsyncIterator[BleRig]:
    rig = await start_rig()
    yield rig
    await rig.close()


async def connect(rig: BleRig, device: Thermometer) -> BleThermometerDriver:
    await rig.add(device)
    found = await scan(seconds=0.2, service_uuids=["1809"], backend=BleBackend(**rig.backend()))
    assert [a.address for a in found] == [ADDRESS]
    connection = await BleTransport(ADDRESS, backend=BleBackend(**rig.backend()), scan_timeout=2).connect()
    driver = BleThermometerDriver(connection, timezone=UTC)
    await driver.start()
    return driver


async def test_stored_measurements_arrive_on_subscribe_then_live(rig: BleRig) -> None:
    thermometer = Thermometer(ADDRESS, stored=[temperature("36.8", 1), temperature("37.25", 2)])
    untyped = TemperatureMeasurement(Decimal("38.1"))
    driver = await connect(rig, thermometer)
    assert driver.identity.model == "EMU-TH1"
    pending = asyncio.ensure_future(collect(driver.live(count=4, within=2)))
    await asyncio.sleep(0.1)
    await thermometer.warm_up([temperature("35.0")])   # intermediate: display only
    await thermometer.measure(untyped)
    await thermometer.measure(None)
    readings = await pending
    values = [r.values[Metric.BODY_TEMPERATURE] for r in readings]
    assert [v.value for v in values[:3]] == [Decimal("36.8"), Decimal("37.25"), Decimal("38.1")]
    assert values[0].unit is Unit.CELSIUS and readings[0].body_site is not None
    assert values[3].absent is AbsentReason.NOT_REPRESENTABLE
    # TEMP-3 names the armpit itself; a measurement without a type takes the 0x2A1D type (ear).
    assert readings[3].body_site != readings[0].body_site
    assert readings[0].time_source is TimeSource.DEVICE
    assert readings[2].body_site == readings[0].body_site is not None   # from 0x2A1D


async def test_clock_skew_set_and_forced_disconnect(rig: BleRig) -> None:
    thermometer = Thermometer(ADDRESS, clock=DeviceClock(offset=timedelta(hours=1)))
    driver = await connect(rig, thermometer)
    assert driver.clock is not None and driver.clock.skew is not None
    assert abs(driver.clock.skew + timedelta(hours=1)) < timedelta(seconds=2)
    assert len(thermometer.clock.writes) == 1
    pending = asyncio.ensure_future(collect(driver.live(count=1, within=5)))
    await asyncio.sleep(0.05)
    await thermometer.disconnect()
    with pytest.raises(DeviceError):
        await pending


async def test_truncated_frames_are_rejected_not_fatal(rig: BleRig) -> None:
    thermometer = Thermometer(ADDRESS, behaviour=Misbehaviour(truncate_frames=True))
    driver = await connect(rig, thermometer)
    pending = asyncio.ensure_future(collect(driver.live(count=1, within=2)))
    await asyncio.sleep(0.05)
    await thermometer.measure(temperature("36.6"))
    thermometer.behaviour.truncate_frames = False
    await thermometer.measure(temperature("36.7"))
    [reading] = await pending
    assert driver.rejected_frames == 1 and reading.values[Metric.BODY_TEMPERATURE].value == Decimal("36.7")


async def test_stored_flush_cut_short_delivers_the_rest_next_time(rig: BleRig) -> None:
    thermometer = Thermometer(ADDRESS, stored=[temperature("36.1", 1), temperature("36.2", 2),
                                               temperature("36.3", 3)],
                              behaviour=Misbehaviour(disconnect_after=1, indication_delay=0.02))
    driver = await connect(rig, thermometer)
    got: list[Reading] = []
    with pytest.raises(DeviceError):
        async for reading in driver.live(count=3, within=2):
            got.append(reading)
    assert [r.values[Metric.BODY_TEMPERATURE].value for r in got] == [Decimal("36.1")]
    thermometer.behaviour.disconnect_after = None
    connection = await BleTransport(ADDRESS, backend=BleBackend(**rig.backend()), scan_timeout=2).connect()
    again = BleThermometerDriver(connection, timezone=UTC)
    await again.start()
    rest = await collect(again.live(count=2, within=2))
    assert [r.values[Metric.BODY_TEMPERATURE].value for r in rest] == [Decimal("36.2"), Decimal("36.3")]
