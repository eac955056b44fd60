"""`healthhut devices` BLE commands against in-process emulated devices (no radio needed)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from healthhut.cli.devices_ble import app
from healthhut.drivers.capture import read_capture

runner = CliRunner()


def test_scan_lists_every_emulator_with_its_driver() -> None:
    result = runner.invoke(app, ["scan", "--timeout", "0.3", "--json", "--emulate", "all"])
    assert result.exit_code == 0, result.output
    drivers = {row["driver"] for row in json.loads(result.output)["devices"]}
    assert drivers == {"ble.blood-pressure", "ble.pulse-oximeter", "ble.thermometer", "ble.weight-scale",
                       "ble.berrymed", "ble.ring-oximeter"}


def test_probe_reports_identity_clock_and_stored_count_without_setting_the_clock() -> None:
    result = runner.invoke(app, ["probe", "-", "--json", "--emulate", "bp"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["driver"] == "ble.blood-pressure" and report["stored_records"] == 3
    assert report["device"]["serial"] == "BP0001" and report["battery_percent"] == 87
    assert abs(report["clock"]["skew_seconds"] - 240) < 2


def test_read_live_and_ring_nights() -> None:
    result = runner.invoke(app, ["read", "-", "--count", "2", "--json", "--emulate", "thermometer"])
    assert result.exit_code == 0, result.output
    readings = json.loads(result.output)["readings"]
    assert [r["kind"] for r in readings] == ["body_temperature"] * 2
    ring = runner.invoke(app, ["read", "-", "--json", "--emulate", "ring"])
    assert ring.exit_code == 0, ring.output
    [night] = json.loads(ring.output)["readings"]
    assert night["kind"] == "oximetry_series" and night["series"]["spo2"]["samples"] == 900


def test_sniff_records_a_replayable_capture(tmp_path: Path) -> None:
    capture = tmp_path / "cuff.jsonl"
    result = runner.invoke(app, ["sniff", "-", "--count", "2", "--record", str(capture), "--emulate", "bp"])
    assert result.exit_code == 0, result.output
    assert "bls.measurement" in result.output
    lines = list(read_capture(capture))
    assert [line.codec for line in lines] == ["bls.measurement", "bls.measurement"]
    assert lines[0].device.serial == "BP0001" and lines[0].received_at.utcoffset() is not None


def test_unknown_emulator_is_a_usage_error() -> None:
    result = runner.invoke(app, ["probe", "-", "--emulate", "toaster"])
    assert result.exit_code != 0
