"""`healthhut devices` serial side: scan ports, probe one, read a driver's Readings, sniff raw frames."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthhut.cli.common import print_json

if TYPE_CHECKING:
    from healthhut.drivers.codecs.framing import IncrementalFramer
    from healthhut.drivers.serial_session import DriverContext
    from healthhut.drivers.transport_serial import SerialSettings

app = typer.Typer(no_args_is_help=True, help="Serial devices: scan, probe, read, sniff.")

DRIVERS = ("cms50", "cms50.v7", "cms50.legacy", "berrymed.bci", "pc300")
MODELS = {"cms50": "Contec CMS50", "cms50.v7": "Contec CMS50 (V7.0)", "cms50.legacy": "Contec CMS50 (gen A)",
          "berrymed.bci": "BerryMed BCI", "pc300": "Creative PC-300"}


def _check_driver(name: str) -> None:
    from healthhut.errors import UsageError

    if name not in DRIVERS:
        raise UsageError(f"unknown serial driver {name!r}; known: {', '.join(DRIVERS)}")


def _context(port: str, driver: str) -> DriverContext:
    from healthhut.drivers.serial_session import DriverContext
    from healthhut.readings import DeviceIdentity, Transport

    return DriverContext(DeviceIdentity(Transport.SERIAL, address=port, model=MODELS[driver]))


async def _say(text: str) -> None:
    await asyncio.to_thread(typer.echo, text)


@app.command("scan")
def scan_command(
    serial: Annotated[bool, typer.Option("--serial", help="List serial ports (USB VID:PID, likely device).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """List serial ports with their USB ids and what is probably behind them."""
    from healthhut.drivers.transport_serial import list_serial_ports

    ports = list_serial_ports() if serial else []
    rows = [{"port": p.device, "usb_id": p.usb_id, "description": p.description, "manufacturer": p.manufacturer,
             "serial_number": p.serial_number, "bridge": p.likely.bridge if p.likely else None,
             "likely": p.likely.guess if p.likely else None, "driver": p.likely.driver if p.likely else None}
            for p in ports]
    if as_json:
        print_json({"serial_ports": rows})
        return
    if not rows:
        typer.echo("no serial ports found")
    for row in rows:
        guess = f": {row['likely']}" if row["likely"] else ""
        bridge = f"{row['bridge']} " if row["bridge"] else ""
        typer.echo(f"{bridge}on {row['port']} [{row['usb_id'] or 'no USB id'}] {row['description']}{guess}")


async def _listen(settings: SerialSettings, framer: IncrementalFramer, decode: Callable[[bytes], Any],
                  wanted: type, *, send: bytes = b"", within: float = 1.5, needed: int = 3) -> bool:
    from healthhut.drivers.serial_session import count_frames
    from healthhut.drivers.transport_serial import SerialPort

    port = await SerialPort.open(settings)
    try:
        if send:
            await port.write(send)
        return await count_frames(port, framer, decode, wanted, within=within, needed=needed) >= needed
    finally:
        await port.close()


async def _probe(port: str) -> str | None:
    from healthhut.drivers.codecs import berrymed, pc300
    from healthhut.drivers.codecs.framing import AA55Framer, SyncBitFramer
    from healthhut.drivers.serial_oximeter import Cms50Oximeter, OximeterOptions
    from healthhut.drivers.transport_serial import SerialSettings
    from healthhut.errors import DeviceError

    fast = SerialSettings(port, baudrate=115200)
    if await _listen(fast, SyncBitFramer(5), berrymed.decode_packet, berrymed.BciSample):
        return "berrymed.bci"
    if await _listen(fast, AA55Framer(), pc300.split_frame, pc300.Pc300Frame, send=pc300.ASK_DEVICE_NAME,
                     needed=1):
        return "pc300"
    oximeter = Cms50Oximeter(port, _context(port, "cms50"), options=OximeterOptions(detect_timeout=1.5))
    try:
        return (await oximeter.detect_generation()).value
    except DeviceError:
        return None


@app.command("probe")
def probe_command(
    port: Annotated[str, typer.Argument(help="A device path or pyserial URL.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Find out which serial protocol answers on PORT (BerryMed BCI, PC-300, CMS50 V7, CMS50 gen A)."""
    found = asyncio.run(_probe(port))
    if as_json:
        print_json({"port": port, "driver": found})
    else:
        typer.echo(f"{port}: {found}" if found else f"{port}: no known device answered")
    if found is None:
        raise typer.Exit(1)


async def _read(port: str, driver: str, count: int, measure: bool) -> list[Any]:
    from healthhut.cli.decode import reading_summary
    from healthhut.drivers.serial_blood_pressure import Pc300BloodPressure
    from healthhut.drivers.serial_oximeter import BerrymedOximeter, Cms50Generation, Cms50Oximeter

    context = _context(port, driver)
    out: list[Any] = []
    if driver == "pc300":
        async with Pc300BloodPressure(port, context) as cuff:
            if measure:
                for _ in range(count):
                    out.append(reading_summary(await cuff.measure()))
                return out
            async for reading in cuff.readings():
                out.append(reading_summary(reading))
                if len(out) >= count:
                    return out
    oximeter: BerrymedOximeter | Cms50Oximeter
    if driver == "berrymed.bci":
        oximeter = BerrymedOximeter(port, context)
    else:
        generation = None if driver == "cms50" else Cms50Generation(driver)
        oximeter = Cms50Oximeter(port, context, generation=generation)
    async with oximeter:
        async for reading in oximeter.readings():
            out.append(reading_summary(reading))
            if len(out) >= count:
                break
    return out


@app.command("read")
def read_command(
    port: Annotated[str, typer.Argument(help="A device path or pyserial URL.")],
    driver: Annotated[str, typer.Option("--driver", help=f"One of: {', '.join(DRIVERS)}.")],
    count: Annotated[int, typer.Option("--count", min=1, help="Stop after N readings.")] = 5,
    measure: Annotated[bool, typer.Option("--measure", help="pc300: start each measurement.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print the Readings a serial driver produces (live oximetry at most once a second)."""
    _check_driver(driver)
    readings = asyncio.run(_read(port, driver, count, measure))
    if as_json:
        print_json({"port": port, "driver": driver, "readings": readings})
        return
    for summary in readings:
        values = ", ".join(f"{k} {v.get('value', v.get('absent'))} {v['unit']}" for k, v in summary["values"].items())
        flags = f" [{', '.join(summary['status'])}]" if summary["status"] else ""
        typer.echo(f"{summary['measured_at']} {summary['kind']}: {values}{flags}")


def _sniff_setup(driver: str, generation: str) -> tuple[SerialSettings, Callable[[], IncrementalFramer], str]:
    from healthhut.drivers.codecs import cms50_v7
    from healthhut.drivers.codecs.framing import AA55Framer, Cms50LegacyFramer, HighByteFramer, SyncBitFramer
    from healthhut.drivers.transport_serial import SerialSettings

    if driver == "pc300":
        return SerialSettings("", 115200), AA55Framer, "pc300"
    if driver == "berrymed.bci":
        return SerialSettings("", 115200), lambda: SyncBitFramer(5), "berrymed.bci"
    if generation == "cms50.v7":
        return SerialSettings("", 115200), lambda: HighByteFramer(cms50_v7.PACKET_LENGTHS), "cms50.v7"
    return SerialSettings("", 19200, parity="O"), Cms50LegacyFramer, "cms50.legacy"


async def _sniff(port: str, driver: str, count: int, record: Path | None) -> int:
    from dataclasses import replace

    from healthhut.drivers.capture import format_capture_line
    from healthhut.drivers.codecs import cms50_v7
    from healthhut.drivers.codecs.base import describe
    from healthhut.drivers.codecs.registry import get_codec
    from healthhut.drivers.serial_oximeter import Cms50Oximeter
    from healthhut.drivers.transport_serial import SerialPort
    from healthhut.errors import DecodeError

    context = _context(port, driver)
    generation = driver
    if driver == "cms50":
        generation = (await Cms50Oximeter(port, context).detect_generation()).value
    settings, make_framer, codec_name = _sniff_setup(driver, generation)
    codec, framer = get_codec(codec_name), make_framer()
    handle = await asyncio.to_thread(record.open, "a", encoding="utf-8") if record else None
    serial_port = await SerialPort.open(replace(settings, url=port))
    frames_seen = 0
    try:
        if codec_name == "cms50.v7":   # V7 units stream only when asked, and stop without keep-alives
            await serial_port.write(cms50_v7.command(cms50_v7.CMD_START_LIVE))
        loop = asyncio.get_running_loop()
        keepalive_at = loop.time()
        while frames_seen < count:
            data = await serial_port.read()
            await _say(f"<< {data.hex(' ')}")
            for frame in framer.feed(data):
                frames_seen += 1
                if frame.discarded_before:
                    await _say(f"   discarded {frame.discarded_before} byte(s) before offset {frame.offset}")
                try:
                    shown = describe(codec.decode(frame.data))
                except DecodeError as exc:
                    shown = f"decode error: {exc}"
                await _say(f"   | {frame.data.hex(' ')} | {shown}")
                if handle is not None:
                    line = format_capture_line(context.clock(), context.device, codec_name, frame.data)
                    await asyncio.to_thread(handle.write, line + "\n")
            if codec_name == "cms50.v7" and loop.time() - keepalive_at > 5:
                keepalive_at = loop.time()
                await serial_port.write(cms50_v7.command(cms50_v7.CMD_KEEP_ALIVE))
        await _say(f"{frames_seen} frame(s), {framer.discarded} byte(s) discarded")
    finally:
        await serial_port.close()
        if handle is not None:
            await asyncio.to_thread(handle.close)
    return frames_seen


@app.command("sniff")
def sniff_command(
    port: Annotated[str, typer.Argument(help="A device path or pyserial URL.")],
    driver: Annotated[str, typer.Option("--driver", help=f"One of: {', '.join(DRIVERS)}.")],
    record: Annotated[Path | None, typer.Option("--record", help="Append frames to a capture file.")] = None,
    count: Annotated[int, typer.Option("--count", min=1, help="Stop after N frames.")] = 100,
) -> None:
    """Show raw bytes as hex, frame boundaries, each frame decoded, and discarded bytes."""
    _check_driver(driver)
    asyncio.run(_sniff(port, driver, count, record))
