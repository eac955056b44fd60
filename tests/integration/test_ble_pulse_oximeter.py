"""End to end through bleak over bumble: the PLX driver against an emulated pulse oximeter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from ble_support import SteppingClock, collect

from healthhut.drivers.ble.ble_pulse_oximeter import BlePulseOximeterDriver
from healthhut.drivers.ble.transport_ble import ADVICE_BONDED, BleBackend, BleTransport, scan
from healthhut.drivers.codecs.gatt_time import DeviceTime
from healthhut.drivers.codecs.pulse_oximetry import (
    ContinuousMeasurement,
    PlxSupportedFeatures,
    SpO2PulseRate,
    SpotCheckMeasurement,
)
from healthhut.drivers.emulators.ble_common import DeviceClock, Misbehaviour
from healthhut.drivers.emulators.ble_pulse_oximeter import PulseOximeter
from healthhut.drivers.emulators.ble_rig import BleRig, start_rig
from healthhut.errors import DeviceError
from healthhut.readings import AbsentReason, Metric, Reading, ReadingKind, StatusFlag, TimeSource

ADDRESS = "C0:20:00:00:00:01"


def spot(spo2: int, minute: int) -> SpotCheckMeasurement:
    return SpotCheckMeasurement(Decimal(spo2), Decimal(70), timestamp=DeviceTime(2024, 6, 24, 3, minute, 0))


def sample(spo2: int) -> ContinuousMeasurement:
    return ContinuousMeasurement(SpO2PulseRate(Decimal(spo2), Decimal(60)))


# The gateway clock advances one second per read: one continuous notification a second.
ONE_SECOND_PER_NOTIFICATION = timedelta(seconds=1)


@pytest.fixture
async def rig() -> AsyncIterator[BleRig]:
    rig = await start_rig()
    yield rig
    await rig.close()


async def connect(rig: BleRig, device: PulseOximeter, **kwargs: object) -> BlePulseOximeterDriver:
    await rig.add(device)
    connection = await BleTransport(ADDRESS, backend=BleBackend(**rig.backend()), scan_timeout=2).connect()
    driver = BlePulseOximeterDriver(connection, timezone=UTC, record_timeout=2, **kwargs)  # type: ignore[arg-type]
    await driver.start()
    return driver


async def test_discovery_identity_and_features(rig: BleRig) -> None:
    await rig.add(PulseOximeter(ADDRESS))
    found = await scan(seconds=0.2, service_uuids=["1822"], backend=BleBackend(**rig.backend()))
    assert [a.address for a in found] == [ADDRESS]
    connection = await BleTransport(ADDRESS, backend=BleBackend(**rig.backend()), scan_timeout=2).connect()
    driver = BlePulseOximeterDriver(connection, timezone=UTC)
    await driver.start()
    assert driver.identity.model == "EMU-OX1" and driver.battery == 87
    features = await driver.features()
    assert features is not None and PlxSupportedFeatures.SPOT_CHECK_STORAGE in features.supported


async def test_live_spot_check_and_nan_with_clock_not_set(rig: BleRig) -> None:
    oximeter = PulseOximeter(ADDRESS)
    driver = await connect(rig, oximeter)
    pending = asyncio.ensure_future(collect(driver.live(count=2, within=2)))
    await asyncio.sleep(0.05)
    await oximeter.spot_check(spot(97, 1))
    await oximeter.spot_check(None)
    good, bad = await pending
    assert good.values[Metric.SPO2].value == Decimal(97) and good.time_source is TimeSource.DEVICE
    assert bad.values[Metric.SPO2].absent is AbsentReason.NOT_A_NUMBER
    # SPOT-3 carries no timestamp, so the receive time stands; the flag still says the clock is unset.
    assert bad.time_source is TimeSource.RECEIPT and StatusFlag.CLOCK_NOT_SET in bad.status


async def test_continuous_notifications_become_one_series_per_window(rig: BleRig) -> None:
    oximeter = PulseOximeter(ADDRESS)
    driver = await connect(rig, oximeter, now=SteppingClock(ONE_SECOND_PER_NOTIFICATION))
    pending = asyncio.ensure_future(collect(driver.continuous_series(window=timedelta(seconds=10), windows=1,
                                                                     within=2)))
    await asyncio.sleep(0.05)
    await oximeter.stream([sample(90 + i % 5) for i in range(12)])
    [series] = await pending
    assert series.kind is ReadingKind.OXIMETRY_SERIES
    spo2 = series.series[Metric.SPO2]
    assert spo2.period == timedelta(seconds=1) and len(spo2.samples) == 10
    assert spo2.samples[:5] == (90.0, 91.0, 92.0, 93.0, 94.0)


async def test_disconnect_keeps_the_partial_series(rig: BleRig) -> None:
    oximeter = PulseOximeter(ADDRESS)
    driver = await connect(rig, oximeter, now=SteppingClock(ONE_SECOND_PER_NOTIFICATION))
    got: list[Reading] = []

    async def consume() -> None:
        async for reading in driver.continuous_series(window=timedelta(seconds=60), within=2):
            got.append(reading)

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.05)
    await oximeter.stream([sample(95)] * 3)
    await asyncio.sleep(0.05)
    await oximeter.disconnect()
    with pytest.raises(DeviceError):
        await task
    assert len(got) == 1 and got[0].series[Metric.SPO2].samples[:3] == (95.0, 95.0, 95.0)


async def test_download_all_stored_spot_checks_and_misbehaviour(rig: BleRig) -> None:
    oximeter = PulseOximeter(ADDRESS, records=[spot(90 + i, i) for i in range(5)],
                             behaviour=Misbehaviour(malformed_records=frozenset({2}), duplicate_records=True))
    driver = await connect(rig, oximeter)
    committed: list[Reading] = []

    async def commit(reading: Reading) -> None:
        committed.append(reading)

    result = await driver.download(commit)
    assert result.complete and result.rejected == 2
    # PLXS has no sequence numbers: duplicates reach the store, whose identity (device+type+time) folds them.
    assert {r.measured_at for r in committed} == {datetime(2024, 6, 24, 3, m, tzinfo=UTC) for m in (0, 2, 3, 4)}
    assert all(StatusFlag.FROM_STORAGE in r.status for r in committed)


async def test_download_cut_short_reports_incomplete(rig: BleRig) -> None:
    oximeter = PulseOximeter(ADDRESS, records=[spot(95, i) for i in range(6)],
                             behaviour=Misbehaviour(disconnect_after=2))
    driver = await connect(rig, oximeter)
    committed: list[Reading] = []

    async def commit(reading: Reading) -> None:
        committed.append(reading)

    result = await driver.download(commit)
    assert not result.complete and result.error is not None and len(committed) == 2


async def test_clock_skew_and_refused_cccd(rig: BleRig) -> None:
    oximeter = PulseOximeter(ADDRESS, clock=DeviceClock(offset=timedelta(minutes=-30)),
                             behaviour=Misbehaviour(refuse_cccd=True))
    driver = await connect(rig, oximeter)
    assert driver.clock is not None and driver.clock.skew is not None
    assert abs(driver.clock.skew - timedelta(minutes=30)) < timedelta(seconds=2)
    with pytest.raises(DeviceError) as caught:
        await anext(driver.live(count=1, within=1))
    assert caught.value.advice == ADVICE_BONDED


async def test_slow_stored_records_and_reconnect_after_forced_disconnect(rig: BleRig) -> None:
    oximeter = PulseOximeter(ADDRESS, records=[spot(95, i) for i in range(3)],
                             behaviour=Misbehaviour(indication_delay=0.05))
    driver = await connect(rig, oximeter)
    await oximeter.disconnect()
    await asyncio.sleep(0.05)
    assert driver.connection.disconnected.is_set()
    connection = await BleTransport(ADDRESS, backend=BleBackend(**rig.backend()), scan_timeout=2).connect()
    again = BlePulseOximeterDriver(connection, timezone=UTC, record_timeout=2)
    await again.start()
    committed: list[Reading] = []

    async def commit(reading: Reading) -> None:
        committed.append(reading)

    result = await again.download(commit)
    assert result.complete and len(committed) == 3
