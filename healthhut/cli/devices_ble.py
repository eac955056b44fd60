"""`healthhut devices` BLE side: scan, probe, read and sniff, each also against an in-process emulated device."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthhut.cli.common import print_json

if TYPE_CHECKING:
    from healthhut.drivers.ble.transport_ble import BleBackend, BleConnection
    from healthhut.readings import Reading

app = typer.Typer(no_args_is_help=True, help="Bluetooth LE devices: scan, probe, read, sniff.")

Emulate = Annotated[str | None, typer.Option(
    "--emulate", help="Use an in-process emulated device instead of the radio: bp, plx, thermometer, scale, "
                      "berrymed, ring (scan also takes 'all').")]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON document.")]


async def _say(text: str) -> None:
    await asyncio.to_thread(typer.echo, text)


@contextlib.asynccontextmanager
async def _radio(emulate: str | None, address: str | None = None, *,
                 busy: bool = False) -> AsyncIterator[BleBackend]:
    """The platform radio, or a bumble rig with the named emulator(s) (doing something when `busy`)."""
    from healthhut.drivers.ble.transport_ble import BleBackend

    if emulate is None:
        yield BleBackend()
        return
    from healthhut.drivers.emulators.ble_demo import FACTORIES, activity, emulator
    from healthhut.drivers.emulators.ble_rig import start_rig

    names = list(FACTORIES) if emulate == "all" else [emulate]
    devices = [emulator(name, address if len(names) == 1 else None) for name in names]
    rig = await start_rig(*devices)
    tasks = [asyncio.create_task(activity(d)) for d in devices] if busy else []
    try:
        yield BleBackend(**rig.backend())
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await rig.close()


def _emulated_address(emulate: str | None, address: str) -> str:
    if emulate is None or address != "-":
        return address
    from healthhut.drivers.emulators.ble_demo import DEFAULT_ADDRESSES

    return DEFAULT_ADDRESSES.get(emulate, address)


async def _connect(address: str, backend: BleBackend) -> BleConnection:
    from healthhut.drivers.ble.transport_ble import BleTransport

    return await BleTransport(address, backend=backend, scan_timeout=5.0).connect()


def _driver(connection: BleConnection, name: str | None) -> Any:
    from datetime import UTC

    from healthhut.drivers.ble.registry import driver_class, driver_for_services
    from healthhut.errors import DeviceError

    if name is None:
        info = driver_for_services(connection.service_uuids())
        if info is None:
            raise DeviceError("no driver recognises this device's services",
                              advice="pass --driver NAME, or check the device model is supported", transient=False)
        name = info.name
    return driver_class(name)(connection, timezone=UTC)


def reading_view(reading: Reading) -> dict[str, Any]:
    """A JSON-ready Reading: values as strings (resolution kept), absent reasons, series summarised."""
    values = {m.value: (str(q.value) if q.value is not None else None) for m, q in reading.values.items()}
    absent = {m.value: q.absent.value for m, q in reading.values.items() if q.absent is not None}
    series = {m.value: {"start": s.start.isoformat(), "period_s": s.period.total_seconds(),
                        "samples": len(s.samples), "missing": sum(v is None for v in s.samples)}
              for m, s in reading.series.items()}
    return {"kind": reading.kind.value, "measured_at": reading.measured_at.isoformat() if reading.measured_at
            else None, "time_source": reading.time_source.value, "values": values, "absent": absent,
            "status": sorted(s.value for s in reading.status), "sequence": reading.sequence, "series": series}


@app.command("scan")
def scan_command(timeout: Annotated[float, typer.Option("--timeout", help="Seconds to listen.")] = 5.0,
                 as_json: AsJson = False, emulate: Emulate = None) -> None:
    """List advertising BLE devices with the profile recognised and the driver to use."""
    from healthhut.drivers.ble.registry import driver_for_services
    from healthhut.drivers.ble.transport_ble import scan

    async def run() -> list[dict[str, Any]]:
        async with _radio(emulate) as backend:
            found = await scan(seconds=timeout, backend=backend)
        rows = []
        for adv in found:
            info = driver_for_services(adv.service_uuids)
            rows.append({"address": adv.address, "name": adv.name, "rssi": adv.rssi,
                         "profile": info.profile if info else None, "driver": info.name if info else None})
        return rows

    rows = asyncio.run(run())
    if as_json:
        print_json({"devices": rows})
        return
    if not rows:
        typer.echo("no BLE devices heard")
    for row in rows:
        typer.echo(f"{row['address']}  {row['rssi'] or '':>4}  {row['name'] or '?':<16} "
                   f"{row['profile'] or 'unrecognised'}  {row['driver'] or ''}")


@app.command("probe")
def probe_command(address: Annotated[str, typer.Argument(help="Bluetooth address ('-' with --emulate).")],
                  as_json: AsJson = False, emulate: Emulate = None) -> None:
    """Connect, read identity, battery, features, clock skew and stored-record count, then disconnect."""
    from healthhut.drivers.codecs.base import describe

    address = _emulated_address(emulate, address)

    async def run() -> dict[str, Any]:
        async with _radio(emulate, address) as backend:
            connection = await _connect(address, backend)
            try:
                driver = _driver(connection, None)
                await driver.start(set_clock=False)   # probing never changes the device
                report: dict[str, Any] = {"driver": driver.name, "device": describe(driver.identity),
                                          "battery_percent": driver.battery}
                features = getattr(driver, "features", None)
                report["features"] = describe(await features()) if features is not None else None
                clock = driver.clock
                report["clock"] = None if clock is None else {
                    "present": clock.present, "writable": clock.writable,
                    "device_time": clock.device_time.isoformat() if clock.device_time else None,
                    "skew_seconds": clock.skew.total_seconds() if clock.skew is not None else None}
                report["stored_records"] = await _stored_count(driver)
                return report
            finally:
                await connection.close()

    report = asyncio.run(run())
    if as_json:
        print_json(report)
        return
    for key, value in report.items():
        typer.echo(f"{key:>15}: {value}")


async def _stored_count(driver: Any) -> int | None:
    if hasattr(driver, "stored_count"):
        return int(await driver.stored_count())
    if hasattr(driver, "nights"):
        return len(await driver.nights())
    return None


@app.command("read")
def read_command(address: Annotated[str, typer.Argument(help="Bluetooth address ('-' with --emulate).")],
                 driver_name: Annotated[str | None, typer.Option("--driver", help="Driver (default: by service).")]
                 = None,
                 count: Annotated[int, typer.Option("--count", help="Stop after N readings.")] = 5,
                 as_json: AsJson = False, emulate: Emulate = None) -> None:
    """Print live decoded readings (a ring oximeter gives its stored nights instead)."""
    address = _emulated_address(emulate, address)

    async def run() -> list[dict[str, Any]]:
        from healthhut.drivers.ble.gatt_common import MemoryWatermarks

        views: list[dict[str, Any]] = []
        async with _radio(emulate, address, busy=True) as backend:
            connection = await _connect(address, backend)
            try:
                driver = _driver(connection, driver_name)
                await driver.start()
                if hasattr(driver, "live"):
                    async for reading in driver.live(count=count, within=30.0):
                        views.append(reading_view(reading))
                        if not as_json:
                            await _say(_line(views[-1]))
                else:
                    async def keep(reading: Reading) -> None:
                        views.append(reading_view(reading))
                        if not as_json:
                            await _say(_line(views[-1]))

                    await driver.download(keep, MemoryWatermarks())
            finally:
                await connection.close()
        return views

    views = asyncio.run(run())
    if as_json:
        print_json({"readings": views})


def _line(view: dict[str, Any]) -> str:
    values = ", ".join(f"{k}={v}" for k, v in view["values"].items() if v is not None)
    absent = ", ".join(f"{k} absent ({v})" for k, v in view["absent"].items())
    series = ", ".join(f"{k}: {s['samples']} samples" for k, s in view["series"].items())
    return f"{view['kind']:<16} {view['measured_at'] or 'time unknown'}  {values or absent or series}"


@app.command("sniff")
def sniff_command(address: Annotated[str, typer.Argument(help="Bluetooth address ('-' with --emulate).")],
                  record: Annotated[Path | None, typer.Option("--record", help="Write a capture file.")] = None,
                  count: Annotated[int | None, typer.Option("--count", help="Stop after N frames.")] = None,
                  emulate: Emulate = None) -> None:
    """Every notification/indication as hex with its decode beside it; `--record` writes a replayable capture."""
    address = _emulated_address(emulate, address)
    asyncio.run(_sniff(address, record, count, emulate))


async def _sniff(address: str, record: Path | None, count: int | None, emulate: str | None) -> None:
    from datetime import UTC, datetime

    from healthhut.drivers.ble.gatt_common import read_identity
    from healthhut.drivers.ble.registry import CODEC_BY_UUID
    from healthhut.drivers.capture import format_capture_line
    from healthhut.drivers.codecs.base import describe
    from healthhut.drivers.codecs.registry import get_codec
    from healthhut.errors import DecodeError

    async with _radio(emulate, address, busy=True) as backend:
        connection = await _connect(address, backend)
        try:
            identity = await read_identity(connection)
            uuids = connection.notifying_uuids()
            stream = await connection.subscribe(*uuids)
            await _say(f"listening to {len(uuids)} characteristics of {address} (Ctrl-C to stop)")
            seen = 0
            while count is None or seen < count:
                uuid, data = await stream.next_tagged()
                received_at = datetime.now(UTC).astimezone()
                codec_name = CODEC_BY_UUID.get(uuid)
                decoded = "-"
                if codec_name is not None:
                    codec = get_codec(codec_name)
                    try:  # a notification may hold several frames (BerryMed) or part of one (Viatom)
                        decoded = "; ".join(str(describe(codec.decode(f.data))) for f in codec.frames(data))
                    except DecodeError as exc:
                        decoded = f"undecodable: {exc}"
                await _say(f"{received_at:%H:%M:%S.%f} {uuid[4:8] if uuid.endswith('805f9b34fb') else uuid[:8]} "
                           f"{data.hex()}  {codec_name or ''} {decoded}")
                if record is not None and codec_name is not None:
                    line = format_capture_line(received_at, identity, codec_name, data) + "\n"
                    await asyncio.to_thread(_append, record, line)
                seen += 1
        finally:
            await connection.close()


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
