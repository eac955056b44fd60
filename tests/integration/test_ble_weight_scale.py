"""End to end through bleak over bumble: the weight-scale driver against an emulated Weight Scale."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC
from decimal import Decimal

import pytest
from ble_support import collect

from healthhut.drivers.ble.ble_weight_scale import BleWeightScaleDriver
from healthhut.drivers.ble.transport_ble import ADVICE_BONDED, BleBackend, BleTransport, scan
from healthhut.drivers.codecs.gatt_time import DeviceTime
from healthhut.drivers.codecs.weight_scale import WeightMeasurement
from healthhut.drivers.emulators.ble_common import DeviceClock, Misbehaviour
from healthhut.drivers.emulators.ble_rig import BleRig, start_rig
from healthhut.drivers.emulators.ble_weight_scale import WeightScale
from healthhut.errors import DeviceError
from healthhut.readings import AbsentReason, Metric, TimeSource

ADDRESS = "C0:40:00:00:00:01"


@pytest.fixture
async def rig() -> AsyncIterator[BleRig]:
    rig = await start_rig()
    yield rig
    await rig.close()


async def connect(rig: BleRig, device: WeightScale) -> BleWeightScaleDriver:
    await rig.add(device)
    found = await scan(seconds=0.2, service_uuids=["181d"], backend=BleBackend(**rig.backend()))
    assert [a.address for a in found] == [ADDRESS]
    connection = await BleTransport(ADDRESS, backend=BleBackend(**rig.backend()), scan_timeout=2).connect()
    driver = BleWeightScaleDriver(connection, timezone=UTC)
    await driver.start()
    return driver


async def test_stored_weighing_on_subscribe_live_and_failed(rig: BleRig) -> None:
    scale = WeightScale(ADDRESS, stored=[WeightMeasurement(Decimal("72.400"),
                                                           timestamp=DeviceTime(2024, 6, 23, 14, 35, 10))])
    driver = await connect(rig, scale)
    features = await driver.features()
    assert features is not None and features.bmi_supported
    pending = asyncio.ensure_future(collect(driver.live(count=3, within=2)))
    await asyncio.sleep(0.1)
    await scale.measure(WeightMeasurement(Decimal("80.005"), bmi=Decimal("24.1"), height=Decimal("1.820")))
    await scale.measure(None)
    stored, live, failed = await pending
    assert stored.values[Metric.BODY_WEIGHT].value == Decimal("72.400")
    assert stored.time_source is TimeSource.DEVICE
    assert live.values[Metric.BODY_WEIGHT].value == Decimal("80.005") and live.time_source is TimeSource.RECEIPT
    assert failed.values[Metric.BODY_WEIGHT].absent is AbsentReason.MEASUREMENT_FAILED


async def test_unset_clock_and_refused_cccd(rig: BleRig) -> None:
    scale = WeightScale(ADDRESS, clock=DeviceClock(unset=True), behaviour=Misbehaviour(refuse_cccd=True))
    driver = await connect(rig, scale)
    assert driver.clock is not None and driver.clock.device_time is None and driver.clock.skew is None
    assert driver.clock.set_to is not None and not scale.clock.unset
    with pytest.raises(DeviceError) as caught:
        await anext(driver.live(count=1, within=1))
    assert caught.value.advice == ADVICE_BONDED


async def test_duplicate_stored_weighings_are_resent_each_connection(rig: BleRig) -> None:
    stamp = DeviceTime(2024, 6, 23, 7, 0, 0)
    scale = WeightScale(ADDRESS, stored=[WeightMeasurement(Decimal("70.000"), timestamp=stamp)],
                        behaviour=Misbehaviour(duplicate_records=True))
    driver = await connect(rig, scale)
    [first] = await collect(driver.live(count=1, within=2))
    await driver.connection.close()
    connection = await BleTransport(ADDRESS, backend=BleBackend(**rig.backend()), scan_timeout=2).connect()
    again = BleWeightScaleDriver(connection, timezone=UTC)
    await again.start()
    [second] = await collect(again.live(count=1, within=2))
    # Same device timestamp both times: the store's identity (device + type + device time) keeps one.
    assert first.measured_at == second.measured_at and first.device.key == second.device.key
