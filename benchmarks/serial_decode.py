"""Serial decoding cost: frames/s framed and decoded from a 10 MB stream per codec, and the CPU share of one
live CMS50 V7 stream at its native 60 packets/s, read by the driver from a pty emulator in another process.

Run: .venv/bin/python benchmarks/serial_decode.py [MEGABYTES] [LIVE_SECONDS]
The stream is read in 4 KiB chunks (what a USB-serial read returns under load), with 1 % garbage mixed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

from healthhut.drivers.codecs import berrymed, cms50_legacy, cms50_v7, pc300
from healthhut.drivers.codecs.registry import get_codec
from healthhut.drivers.serial_oximeter import Cms50Generation, Cms50Oximeter, OximeterOptions
from healthhut.drivers.serial_session import DriverContext
from healthhut.errors import DecodeError
from healthhut.readings import DeviceIdentity, Transport

SAMPLES = {
    "cms50.v7": cms50_v7.encode_live(cms50_v7.V7LiveData(6, False, False, True, False, 70, False, 7, False,
                                                          75, 98, 125)),
    "cms50.legacy": cms50_legacy.encode_record(72, 97) + bytes.fromhex("C4 3C 05 48 61"),
    "berrymed.bci": berrymed.encode_sample(berrymed.BciSample(True, False, False, 7, 88, False, False, 9, 68, 98)),
    "pc300": pc300.encode_result(pc300.BpResult(150, 114, 96, 78, False)) + pc300.encode_cuff_pressure(120),
}


def build_stream(frame: bytes, megabytes: float, rng: random.Random) -> bytes:
    parts, size, target = [], 0, int(megabytes * 1_000_000)
    while size < target:
        parts.append(frame)
        size += len(frame)
        if rng.random() < 0.01:
            junk = bytes(rng.randrange(256) for _ in range(4))
            parts.append(junk)
            size += len(junk)
    return b"".join(parts)


def decode_rate(name: str, megabytes: float) -> tuple[int, float, int]:
    from healthhut.drivers.codecs.framing import (
        AA55Framer,
        Cms50LegacyFramer,
        HighByteFramer,
        IncrementalFramer,
        SyncBitFramer,
    )

    framers: dict[str, IncrementalFramer] = {
        "cms50.v7": HighByteFramer(cms50_v7.PACKET_LENGTHS), "cms50.legacy": Cms50LegacyFramer(),
        "berrymed.bci": SyncBitFramer(5), "pc300": AA55Framer()}
    stream = build_stream(SAMPLES[name], megabytes, random.Random(7))
    codec, framer = get_codec(name), framers[name]
    frames = 0
    started = time.perf_counter()
    for i in range(0, len(stream), 4096):
        for frame in framer.feed(stream[i:i + 4096]):
            with contextlib.suppress(DecodeError):   # garbage may form an undecodable frame; count it anyway
                codec.decode(frame.data)
            frames += 1
    return frames, time.perf_counter() - started, framer.discarded


def _serve(link: str, seconds: float) -> None:
    from healthhut.drivers.emulators.serial_cms50 import Cms50V7Emulator

    async def main() -> None:
        async with Cms50V7Emulator(Path(link), rate_hz=60):
            await asyncio.sleep(seconds)

    asyncio.run(main())


async def live_cpu(link: Path, seconds: float) -> tuple[int, float, float]:
    context = DriverContext(DeviceIdentity(Transport.SERIAL, address=str(link), model="CMS50"), timezone=UTC)
    options = OximeterOptions(live_interval=0)   # worst case: a Reading for every packet
    count = 0
    async with Cms50Oximeter(str(link), context, generation=Cms50Generation.V7, options=options) as oximeter:
        readings = oximeter.readings()
        await anext(readings)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while time.perf_counter() - wall0 < seconds:
            await anext(readings)
            count += 1
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        await readings.aclose()
    return count, wall, cpu


def main() -> None:
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    live_seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    print(f"decode: {megabytes:g} MB per codec, 4 KiB chunks, ~1 % garbage")
    for name in SAMPLES:
        frames, elapsed, discarded = decode_rate(name, megabytes)
        print(f"  {name:13s} {frames:>9,d} frames in {elapsed:6.2f} s = {frames / elapsed:>10,.0f} frames/s "
              f"({megabytes / elapsed:5.2f} MB/s, {discarded:,d} bytes discarded)")
    link = Path(tempfile.mkdtemp()) / "cms50"
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(str(link), live_seconds + 10))
    server.start()
    while not link.exists():
        time.sleep(0.05)
    try:
        count, wall, cpu = asyncio.run(live_cpu(link, live_seconds))
    finally:
        server.terminate()
        server.join()
    print(f"live CMS50 V7 at 60 packets/s: {count} Readings in {wall:.1f} s ({count / wall:.1f}/s), "
          f"driver process CPU {100 * cpu / wall:.1f} % of one core")


if __name__ == "__main__":
    main()
