"""PC-300 blood-pressure driver against its pty emulator: results, error frames, cuff pressure, resync, unplug."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from healthhut.drivers.codecs import pc300
from healthhut.drivers.emulators.serial_pc300 import Pc300Emulator
from healthhut.drivers.emulators.serial_pty import SerialFaults
from healthhut.drivers.serial_blood_pressure import Pc300BloodPressure, Pc300Options, error_reason
from healthhut.drivers.serial_session import DriverContext
from healthhut.errors import DeviceError
from healthhut.gateway.ingest import Ingestor, IngestStatus
from healthhut.readings import (
    AbsentReason,
    DeviceIdentity,
    Metric,
    Reading,
    ReadingKind,
    StatusFlag,
    Transport,
)
from healthhut.records.normalise import NormaliseSettings
from healthhut.records.store import RecordStore

OPTIONS = Pc300Options(measurement_timeout=5.0)


def stepping_clock() -> Callable[[], datetime]:
    ticks = itertools.count()
    start = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    return lambda: start + timedelta(seconds=next(ticks))


def context(link: Path) -> DriverContext:
    return DriverContext(DeviceIdentity(Transport.SERIAL, address=str(link), model="PC-300"), clock=stepping_clock())


def ingest_all(db: Path, readings: list[Reading]) -> list[IngestStatus]:
    store = RecordStore.open(db)
    try:
        ingestor = Ingestor(store, NormaliseSettings(site_id="hut-test"))
        return [ingestor.ingest_reading(r, None).status for r in readings + readings]
    finally:
        store.close()


async def test_measurement_result_with_live_cuff_pressure(tmp_path: Path) -> None:
    pressures: list[pc300.CuffPressure] = []
    async with Pc300Emulator(tmp_path / "tty") as device:  # noqa: SIM117 - the inner context needs device.path
        async with Pc300BloodPressure(device.path, context(tmp_path / "tty"), options=OPTIONS,
                                      on_cuff_pressure=pressures.append) as cuff:
            reading = await cuff.measure()
    assert device.commands[0] == (pc300.TOKEN_BP_CONTROL, pc300.BP_START)
    assert reading.kind is ReadingKind.BLOOD_PRESSURE
    assert {m: q.value for m, q in reading.values.items()} == {
        Metric.SYSTOLIC: 150, Metric.DIASTOLIC: 96, Metric.MEAN_ARTERIAL: 114, Metric.PULSE_RATE: 78}
    assert max(p.pressure_mmhg for p in pressures) == 180 and len(pressures) == 20
    assert any(p.heartbeat for p in pressures)


@pytest.mark.parametrize(("code", "flags"), [(1, {StatusFlag.CUFF_TOO_LOOSE}), (3, set()),
                                             (4, {StatusFlag.BODY_MOVEMENT}), (6, set()), (12, set())])
async def test_error_frames_become_failed_readings(tmp_path: Path, code: int, flags: set[StatusFlag]) -> None:
    async with Pc300Emulator(tmp_path / "tty", step_mmhg=60, krk_module=code > 6) as device:
        device.outcomes.append(code)
        async with Pc300BloodPressure(device.path, context(tmp_path / "tty"), options=OPTIONS) as cuff:
            failed = await cuff.measure()
    assert failed.kind is ReadingKind.BLOOD_PRESSURE and failed.status == flags
    assert all(q.absent is AbsentReason.MEASUREMENT_FAILED for q in failed.values.values())
    assert error_reason(failed) == pc300.BP_ERRORS[code]


async def test_listening_results_are_stored_once(tmp_path: Path) -> None:
    result = pc300.BpResult(186, 137, 112, 104, True)
    async with Pc300Emulator(tmp_path / "tty", step_mmhg=60) as device:
        device.outcomes.extend([result, 3, result])
        driver = Pc300BloodPressure(device.path, context(tmp_path / "tty"), options=OPTIONS)
        readings: list[Reading] = []
        listener = driver.readings()
        for _ in range(3):
            device.press_start()   # the resident presses the kiosk's button
            readings.append(await asyncio.wait_for(anext(listener), 5))
        await listener.aclose()
        await driver.close()
    assert [r.values[Metric.SYSTOLIC].value for r in readings] == [186, None, 186]
    assert StatusFlag.IRREGULAR_PULSE in readings[0].status
    statuses = await asyncio.to_thread(ingest_all, tmp_path / "hut.db", readings)
    assert statuses[3:] == [IngestStatus.DUPLICATE] * 3                 # the second pass changes nothing
    assert IngestStatus.DUPLICATE not in statuses[:3]                  # and the first stored each one


async def test_resync_after_garbage_and_split_frames(tmp_path: Path) -> None:
    faults = SerialFaults(garbage_every=2, garbage_bytes=9, drop_every=7, split_frames=True)
    async with Pc300Emulator(tmp_path / "tty", faults=faults) as device:  # noqa: SIM117 - the inner context needs device.path
        async with Pc300BloodPressure(device.path, context(tmp_path / "tty"), options=OPTIONS) as cuff:
            reading = await cuff.measure()
            discarded = cuff.discarded
    assert discarded > 0
    assert reading.values[Metric.SYSTOLIC].value == 150   # the CRC keeps damaged frames out


async def test_unplug_and_reopen_while_listening(tmp_path: Path) -> None:
    delays: list[float] = []
    async with Pc300Emulator(tmp_path / "tty", step_mmhg=60,
                             faults=SerialFaults(unplug_after_frames=3)) as device:

        async def sleep(delay: float) -> None:
            delays.append(delay)
            if not device.plugged.is_set():
                await device.replug()

        driver = Pc300BloodPressure(device.path, context(tmp_path / "tty"), options=OPTIONS, sleep=sleep)
        listener = driver.readings()
        first = asyncio.ensure_future(anext(listener))
        await asyncio.sleep(0.2)
        device.press_start()          # unplugged after 3 cuff frames
        while driver.session is None or driver.session.reopens == 0:  # noqa: ASYNC110 - polling driver state
            await asyncio.sleep(0.01)
        device.press_start()          # after the replug the next measurement completes
        reading = await asyncio.wait_for(first, 5)
        await listener.aclose()
        await driver.close()
    assert delays == [OPTIONS.backoff.initial]
    assert reading.values[Metric.SYSTOLIC].value == 150


async def test_no_result_is_a_device_error_and_the_cuff_is_stopped(tmp_path: Path) -> None:
    async with Pc300Emulator(tmp_path / "tty", rate_hz=5) as device:  # noqa: SIM117 - the inner context needs device.path
        async with Pc300BloodPressure(device.path, context(tmp_path / "tty"),
                                      options=Pc300Options(measurement_timeout=0.3)) as cuff:
            with pytest.raises(DeviceError):
                await cuff.measure()
            await asyncio.sleep(0.1)
    assert (pc300.TOKEN_BP_CONTROL, pc300.BP_STOP) in device.commands


async def test_wrong_baud_rate_gets_no_answer(tmp_path: Path) -> None:
    async with Pc300Emulator(tmp_path / "tty") as device:
        options = Pc300Options(baudrate=9600, measurement_timeout=0.5)
        async with Pc300BloodPressure(device.path, context(tmp_path / "tty"), options=options) as cuff:
            with pytest.raises(DeviceError):
                await cuff.measure()
    assert device.commands == [] and device.bytes_received   # the bytes arrived, garbled for the board
