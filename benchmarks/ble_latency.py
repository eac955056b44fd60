"""BLE end-to-end latency and throughput through bleak over an in-process bumble link.

Latency: emulated cuff starts a Blood Pressure Measurement indication → the BP driver yields the Reading;
median and p99 over N indications (default 1,000), one at a time. Throughput: the cuff indicates N
measurements back to back (each indication waits for its ATT confirmation, as on air) and we count how
many Readings per second the driver yields. Run: .venv/bin/python benchmarks/ble_latency.py [N]
The link is emulated: this measures the gateway's software path (bleak, backend, driver, codec), not radio.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import UTC
from decimal import Decimal

from healthhut.drivers.ble.ble_berrymed import NOTIFY_UUID, BleBerryMedDriver
from healthhut.drivers.ble.ble_blood_pressure import BleBloodPressureDriver
from healthhut.drivers.ble.transport_ble import BleBackend, BleTransport
from healthhut.drivers.codecs.berrymed import BciSample, decode_packet
from healthhut.drivers.codecs.blood_pressure import BloodPressureMeasurement
from healthhut.drivers.emulators.ble_berrymed import BerryMedOximeter
from healthhut.drivers.emulators.ble_blood_pressure import BloodPressureCuff
from healthhut.drivers.emulators.ble_rig import start_rig

ADDRESS = "C0:BE:00:00:00:01"
BERRYMED = "00:A0:50:BE:00:02"


async def run(n: int) -> None:
    cuff = BloodPressureCuff(ADDRESS)
    rig = await start_rig(cuff)
    connection = await BleTransport(ADDRESS, backend=BleBackend(**rig.backend())).connect()
    driver = BleBloodPressureDriver(connection, timezone=UTC)
    await driver.start()
    readings = driver.live(within=10)
    value = BloodPressureMeasurement(Decimal(120), Decimal(80), Decimal(93), pulse_rate=Decimal(72))
    first = asyncio.ensure_future(anext(readings))
    await asyncio.sleep(0.05)  # subscription in place
    await cuff.measure(value, store=False)
    await first

    latencies = []
    for _ in range(n):
        started = time.perf_counter()
        sending = asyncio.ensure_future(cuff.measure(value, store=False))
        await anext(readings)
        latencies.append((time.perf_counter() - started) * 1000)
        await sending
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"indication → Reading: median {statistics.median(latencies):.3f} ms, p99 {p99:.3f} ms "
          f"over {n} indications")

    async def send_all() -> None:
        for _ in range(n):
            await cuff.measure(value, store=False)

    started = time.perf_counter()
    sender = asyncio.ensure_future(send_all())
    for _ in range(n):
        await anext(readings)
    elapsed = time.perf_counter() - started
    await sender
    print(f"throughput: {n / elapsed:.0f} readings/s sustained by one BP driver ({n} in {elapsed:.2f} s)")
    await connection.close()
    await rig.close()
    await berrymed(n * 10)


async def berrymed(packets: int) -> None:
    """BCI packets (5 bytes, 4 per 20-byte notification) decoded per second by the BerryMed driver."""
    oximeter = BerryMedOximeter(BERRYMED)
    rig = await start_rig(oximeter)
    connection = await BleTransport(BERRYMED, backend=BleBackend(**rig.backend())).connect()
    driver = BleBerryMedDriver(connection, timezone=UTC)
    sample = decode_packet(bytes.fromhex("C758094462"))
    assert isinstance(sample, BciSample)
    stream = await connection.subscribe(NOTIFY_UUID, maxsize=packets)
    started = time.perf_counter()
    sender = asyncio.ensure_future(oximeter.stream([sample] * packets))
    seen = 0
    async for _at, _raw, _packet in driver.packets(within=10, stream=stream):
        seen += 1
        if seen == packets:
            break
    elapsed = time.perf_counter() - started
    await sender
    print(f"BerryMed: {packets / elapsed:.0f} BCI packets/s framed and decoded ({packets} in {elapsed:.2f} s;"
          f" the device sends 100/s)")
    await connection.close()
    await rig.close()


def main() -> None:
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))


if __name__ == "__main__":
    main()
