"""`devices` serial commands against pty emulators running on their own event loop thread."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from healthhut.cli.devices_serial import app
from healthhut.drivers.capture import read_capture
from healthhut.drivers.emulators.serial_berrymed import BerrymedBciEmulator
from healthhut.drivers.emulators.serial_cms50 import Cms50V7Emulator
from healthhut.drivers.emulators.serial_pty import PtyDevice

runner = CliRunner()


@contextmanager
def running(make: Callable[[], PtyDevice]) -> Iterator[PtyDevice]:
    """Run an emulator on a background loop, so the CLI can run its own asyncio.run in this thread."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    device = make()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(device.plug())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield device
    finally:
        asyncio.run_coroutine_threadsafe(device.unplug(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_read_json_from_a_v7_oximeter(tmp_path: Path) -> None:
    with running(lambda: Cms50V7Emulator(tmp_path / "tty", rate_hz=200)) as device:
        result = runner.invoke(app, ["read", device.path, "--driver", "cms50.v7", "--count", "2", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["driver"] == "cms50.v7" and len(document["readings"]) == 2
    assert document["readings"][0]["values"]["spo2"] == {"unit": "%", "value": "97"}


def test_sniff_records_a_capture_that_replays(tmp_path: Path) -> None:
    capture = tmp_path / "bci.jsonl"
    with running(lambda: BerrymedBciEmulator(tmp_path / "tty", rate_hz=200)) as device:
        result = runner.invoke(app, ["sniff", device.path, "--driver", "berrymed.bci", "--count", "12",
                                     "--record", str(capture)])
    assert result.exit_code == 0, result.output
    assert "<< " in result.output and "| " in result.output and "'spo2': 97" in result.output
    lines = list(read_capture(capture))
    assert len(lines) >= 12
    assert {line.codec for line in lines} == {"berrymed.bci"}
    assert all(len(line.data) == 5 and line.received_at.utcoffset() is not None for line in lines)
    assert lines[0].device.address == str(tmp_path / "tty")


def test_probe_finds_the_protocol(tmp_path: Path) -> None:
    with running(lambda: BerrymedBciEmulator(tmp_path / "bci", rate_hz=200)) as device:
        result = runner.invoke(app, ["probe", device.path, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["driver"] == "berrymed.bci"
    with running(lambda: Cms50V7Emulator(tmp_path / "v7", rate_hz=200)) as device:
        result = runner.invoke(app, ["probe", device.path])
    assert result.exit_code == 0, result.output
    assert "cms50.v7" in result.output


def test_scan_lists_ports_as_json() -> None:
    result = runner.invoke(app, ["scan", "--serial", "--json"])
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.output)["serial_ports"], list)


def test_unknown_driver_is_a_usage_error() -> None:
    result = runner.invoke(app, ["read", "loop://", "--driver", "nonsense"])
    assert result.exit_code != 0
