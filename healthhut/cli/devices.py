"""`healthhut devices`: one command group for Bluetooth and serial devices.

The target decides the transport: a device path (`/dev/ttyUSB0`) or a pyserial URL (`socket://…`,
`loop://`) is serial; anything else is a Bluetooth address. `scan --serial` lists serial ports instead of
listening for BLE advertisements. The work itself lives in `devices_ble` and `devices_serial`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthhut.cli import devices_ble, devices_serial

app = typer.Typer(no_args_is_help=True)

Target = Annotated[str, typer.Argument(metavar="TARGET", help="Bluetooth address ('-' with --emulate), or a "
                                       "serial device path / pyserial URL.")]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON document.")]
Emulate = Annotated[str | None, typer.Option(
    "--emulate", help="Bluetooth only: use an in-process emulated device instead of the radio (bp, plx, "
                      "thermometer, scale, berrymed, ring; scan also takes 'all').")]
Driver = Annotated[str | None, typer.Option("--driver", help="Driver name; required for serial (cms50, "
                                            "cms50.v7, cms50.legacy, berrymed.bci, pc300), chosen by service "
                                            "for Bluetooth when omitted.")]


def is_serial_target(target: str) -> bool:
    return target.startswith(("/", "COM")) or "://" in target


def _serial_driver(driver: str | None) -> str:
    if driver is None:
        from healthhut.errors import UsageError

        raise UsageError(f"a serial port needs --driver (one of {', '.join(devices_serial.DRIVERS)})")
    return driver


@app.command("scan")
def scan_command(
    serial: Annotated[bool, typer.Option("--serial", help="List serial ports (USB VID:PID, likely device) "
                                         "instead of Bluetooth advertisements.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to listen (Bluetooth).")] = 5.0,
    as_json: AsJson = False,
    emulate: Emulate = None,
) -> None:
    """List nearby Bluetooth devices (or serial ports) with the profile recognised and the driver to use."""
    if serial:
        devices_serial.scan_command(serial=True, as_json=as_json)
    else:
        devices_ble.scan_command(timeout=timeout, as_json=as_json, emulate=emulate)


@app.command("probe")
def probe_command(target: Target, as_json: AsJson = False, emulate: Emulate = None) -> None:
    """Connect, show identity, battery, features, clock skew and stored records, then disconnect."""
    if is_serial_target(target):
        devices_serial.probe_command(port=target, as_json=as_json)
    else:
        devices_ble.probe_command(address=target, as_json=as_json, emulate=emulate)


@app.command("read")
def read_command(
    target: Target,
    driver: Driver = None,
    count: Annotated[int, typer.Option("--count", min=1, help="Stop after N readings.")] = 5,
    measure: Annotated[bool, typer.Option("--measure", help="pc300: start each measurement.")] = False,
    as_json: AsJson = False,
    emulate: Emulate = None,
) -> None:
    """Print live decoded readings."""
    if is_serial_target(target):
        devices_serial.read_command(port=target, driver=_serial_driver(driver), count=count, measure=measure,
                                    as_json=as_json)
    else:
        devices_ble.read_command(address=target, driver_name=driver, count=count, as_json=as_json,
                                 emulate=emulate)


@app.command("sniff")
def sniff_command(
    target: Target,
    driver: Driver = None,
    record: Annotated[Path | None, typer.Option("--record", help="Write a capture file that `healthhut "
                                                "replay` reads.")] = None,
    count: Annotated[int | None, typer.Option("--count", min=1, help="Stop after N frames.")] = None,
    emulate: Emulate = None,
) -> None:
    """Every frame as hex with its decode beside it (and discarded bytes, for serial)."""
    if is_serial_target(target):
        devices_serial.sniff_command(port=target, driver=_serial_driver(driver), record=record,
                                     count=count or 100)
    else:
        devices_ble.sniff_command(address=target, record=record, count=count, emulate=emulate)
