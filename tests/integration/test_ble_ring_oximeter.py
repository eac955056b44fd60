"""End to end through bleak over bumble: stored nights from an emulated Viatom/Wellue ring oximeter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from healthhut.drivers.ble.ble_ring_oximeter import SERVICE_UUID, BleRingOximeterDriver
from healthhut.drivers.ble.gatt_common import MemoryWatermarks
from healthhut.drivers.ble.transport_ble import BleBackend, BleTransport, scan
from healthhut.drivers.codecs.viatom_file import ViatomFileHeader, ViatomRecord, encode_viatom_file
from healthhut.drivers.emulators.ble_common import DeviceClock
from healthhut.drivers.emulators.ble_rig import BleRig, start_rig
from healthhut.drivers.emulators.ble_ring_oximeter import RingBehaviour, RingOximeter
from healthhut.readings import Metric, Reading, ReadingKind, TimeSource

ADDRESS = "C0:60:00:00:00:01"


def night(start: datetime, samples: int) -> bytes:
    records = [ViatomRecord(None if i % 50 == 7 else 90 + i % 8, 60 + i % 5, i % 4, 0) for i in range(samples)]
    header = ViatomFileHeader(3, 0, start, 0, samples * 4, 94, 90, 1, 1, 0, 0, 0, Decimal("8.5"), 0)
    return encode_viatom_file(header, records)


NIGHTS = {f"2024051{d}223015": night(datetime(2024, 5, 10 + d, 22, 30, 15), 300 + d) for d in range(1, 4)}


@pytest.fixture
async def rig() -> AsyncIterator[BleRig]:
    rig = await start_rig()
    yield rig
    await rig.close()


async def connect(rig: BleRig, ring: RingOximeter | None = None, address: str = ADDRESS) -> BleRingOximeterDriver:
    if ring is not None:
        await rig.add(ring)
    connection = await BleTransport(address, backend=BleBackend(**rig.backend()), scan_timeout=2).connect()
    driver = BleRingOximeterDriver(connection, timezone=UTC, response_timeout=0.5)
    await driver.start()
    return driver


class Store:
    def __init__(self) -> None:
        self.nights: list[Reading] = []

    async def commit(self, reading: Reading) -> None:
        self.nights.append(reading)


async def test_discovery_info_clock_and_all_nights(rig: BleRig) -> None:
    ring = RingOximeter(ADDRESS, files=NIGHTS, clock=DeviceClock(offset=timedelta(minutes=-3)))
    await rig.add(ring)
    found = await scan(seconds=0.2, service_uuids=[SERVICE_UUID], backend=BleBackend(**rig.backend()))
    assert [a.name for a in found] == ["O2Ring 0001"]
    driver = await connect(rig)
    assert driver.identity.serial == "2205C0001" and driver.battery == 77
    assert driver.clock is not None and driver.clock.skew is not None
    assert abs(driver.clock.skew - timedelta(minutes=3)) < timedelta(seconds=2)
    assert len(ring.clock.writes) == 1 and abs(ring.clock.offset) < timedelta(seconds=2)
    store, marks = Store(), MemoryWatermarks()
    result = await driver.download(store.commit, marks)
    assert result.complete and result.committed == 3 and result.high_water_mark == 20240513223015
    first = store.nights[0]
    assert first.kind is ReadingKind.OXIMETRY_SERIES and first.time_source is TimeSource.DEVICE
    assert first.measured_at == datetime(2024, 5, 11, 22, 30, 15, tzinfo=UTC)
    spo2 = first.series[Metric.SPO2]
    assert len(spo2.samples) == 301 and spo2.period == timedelta(seconds=4) and spo2.samples[7] is None
    again = await driver.download(store.commit, marks)
    assert again.complete and again.committed == 0 and again.skipped_duplicates == 3


async def test_interrupted_download_resumes_with_the_unfinished_night(rig: BleRig) -> None:
    ring = RingOximeter(ADDRESS, files=NIGHTS, behaviour=RingBehaviour(disconnect_after=9, block_size=200))
    driver = await connect(rig, ring)
    store, marks = Store(), MemoryWatermarks()
    cut = await driver.download(store.commit, marks)   # night 1 = 8 blocks, night 2 cut in its 2nd block
    assert not cut.complete and cut.error is not None and cut.committed == 1
    assert await marks.load(driver.identity.key) == 20240511223015
    ring.behaviour.disconnect_after = None
    resumed = await (await connect(rig)).download(store.commit, marks)
    assert resumed.complete and resumed.committed == 2
    assert [n.measured_at.day for n in store.nights if n.measured_at] == [11, 12, 13]


async def test_bad_crc_duplicates_and_slow_answers_are_survived(rig: BleRig) -> None:
    ring = RingOximeter(ADDRESS, files=NIGHTS, behaviour=RingBehaviour(
        corrupt_blocks=frozenset({0, 3}), duplicate_records=True, indication_delay=0.01))
    driver = await connect(rig, ring)
    store = Store()
    result = await driver.download(store.commit, MemoryWatermarks())
    assert result.complete and result.committed == 3 and driver.retried >= 2
    assert len(store.nights[2].series[Metric.SPO2].samples) == 303


async def test_unset_clock_is_unknown_then_set(rig: BleRig) -> None:
    ring = RingOximeter(ADDRESS, files={}, clock=DeviceClock(unset=True))
    driver = await connect(rig, ring)
    assert driver.clock is not None and driver.clock.device_time is None and driver.clock.skew is None
    assert not ring.clock.unset
    result = await driver.download(Store().commit, MemoryWatermarks())
    assert result.complete and result.committed == 0


async def test_truncated_answers_fail_cleanly(rig: BleRig) -> None:
    from healthhut.errors import DeviceError

    ring = RingOximeter(ADDRESS, files=NIGHTS)
    driver = await connect(rig, ring)
    ring.behaviour.truncate_frames = True
    with pytest.raises(DeviceError):
        await driver.nights()
    assert driver.retried == driver.retries


async def test_refused_cccd_is_a_clear_error_and_forced_disconnect_reconnects(rig: BleRig) -> None:
    from healthhut.drivers.ble.transport_ble import ADVICE_BONDED
    from healthhut.errors import DeviceError

    ring = RingOximeter(ADDRESS, files=NIGHTS, behaviour=RingBehaviour(refuse_cccd=True))
    with pytest.raises(DeviceError) as caught:
        await connect(rig, ring)
    assert caught.value.advice == ADVICE_BONDED
    other = "C0:60:00:00:00:02"
    fresh = RingOximeter(other, files=NIGHTS)
    driver = await connect(rig, fresh, other)
    await fresh.disconnect()
    with pytest.raises(DeviceError):
        await driver.nights()
    again = await connect(rig, address=other)
    assert len(await again.nights()) == 3
