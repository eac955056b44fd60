"""The `healthhut` command end to end, as a subprocess on a real store: decode, replay, records, db, demo.

Also the privacy guard of issue 2: across these main paths (with --debug logging on), no resident identifier
and no measured value appears on stderr, where the journal would keep it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from healthhut.drivers.capture import format_capture_line
from healthhut.readings import DeviceIdentity, Transport

RESIDENT = "110101195307154321"            # an identity-card-shaped number that must never be logged
PATIENT = f"urn:oid:2.16.156.10011.1.1|{RESIDENT}"
HEALTHHUT = [sys.executable, "-m", "healthhut"]
# BP 173/97 mmHg MAP 122, pulse 83, 2024-06-23 14:35:10; distinctive numbers to look for in logs
BP_FRAME = "06ad006100 7a00e80706170e230a5300".replace(" ", "")
SPOT_FRAME = "005b004d00"                    # SpO2 91 %, pulse 77
TEMP_FRAME = "0080010 0ff".replace(" ", "")  # 38.4 Cel
DISTINCTIVE = ("173", "38.4", RESIDENT)
# each log line starts with its own time stamp, whose milliseconds could read "173" by chance
LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", re.MULTILINE)


def run(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEALTHHUT_CONFIG": str(config)}
    result = subprocess.run([*HEALTHHUT, "--debug", *args], capture_output=True, text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:{result.stdout}\nstderr:{result.stderr}")
    return result


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    at = datetime(2024, 6, 23, 6, 36, tzinfo=UTC)
    cuff = DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74", model="UA-651BLE")
    oximeter = DeviceIdentity(Transport.BLE, address="C4:7C:8D:6A:21:0F", model="PO-60")
    thermometer = DeviceIdentity(Transport.BLE, address="E1:22:33:44:55:66", model="HT-01")
    lines = [
        format_capture_line(at, cuff, "bls.measurement", bytes.fromhex(BP_FRAME)),
        format_capture_line(at, oximeter, "plx.spot-check", bytes.fromhex(SPOT_FRAME)),
        format_capture_line(at, thermometer, "hts.temperature", bytes.fromhex(TEMP_FRAME)),
        format_capture_line(at, cuff, "bls.measurement", bytes.fromhex(BP_FRAME)),   # re-download: duplicate
        format_capture_line(at, cuff, "bls.measurement", bytes.fromhex("0678")),     # truncated: rejected
    ]
    path = tmp_path / "capture.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_replay_records_and_privacy(config: Path, capture: Path, tmp_path: Path) -> None:
    stderr: list[str] = []
    replay = run(config, "replay", str(capture), "--patient", PATIENT, "--json")
    stderr.append(replay.stderr)
    document = json.loads(replay.stdout)
    assert document["counts"] == {"duplicate": 1, "rejected": 1, "stored": 3}
    rejected = [f for f in document["frames"] if f["status"] == "rejected"]
    assert rejected[0]["line"] == 5 and "byte" in rejected[0]["reason"]

    # replaying the same capture again stores nothing new
    again = json.loads(run(config, "replay", str(capture), "--patient", PATIENT, "--json").stdout)
    assert again["counts"] == {"duplicate": 4, "rejected": 1}

    patients = run(config, "records", "patients", "--json")
    stderr.append(patients.stderr)
    listed = json.loads(patients.stdout)
    assert [p["identifier"]["value"] for p in listed["patients"]] == [RESIDENT]

    show = run(config, "records", "show", PATIENT, "--json")
    stderr.append(show.stderr)
    timeline = json.loads(show.stdout)
    codes = sorted(entry["code"] for entry in timeline["observations"])
    assert codes == sorted(["85354-9", "8867-4", "2708-6", "8867-4", "8310-5"])
    bp = next(e for e in timeline["observations"] if e["code"] == "85354-9")
    assert bp["interpretation"] in ("H", "HH")

    # staff read times on the hut's wall clock: the cuff said 14:35 Asia/Shanghai, stored as 06:35 UTC
    table = subprocess.run([*HEALTHHUT, "records", "show", PATIENT], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "HEALTHHUT_CONFIG": str(config), "COLUMNS": "200"})
    assert "2024-06-23 14:35" in table.stdout and "06:35" not in table.stdout

    flagged = json.loads(run(config, "records", "flagged", "--json").stdout)
    assert {e["code"] for e in flagged["observations"]} >= {"85354-9", "2708-6"}

    export_path = tmp_path / "export.json"
    exported = run(config, "records", "export", "--format", "fhir", "--output", str(export_path))
    stderr.append(exported.stderr)
    bundle = json.loads(export_path.read_text(encoding="utf-8"))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    kinds = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    assert kinds.count("Observation") == 5 and "Patient" in kinds and "Device" in kinds
    assert stat.S_IMODE(export_path.stat().st_mode) == 0o600

    csv_out = run(config, "records", "export", "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("observation_id,") and len(csv_out) == 6

    database = tmp_path / "db" / "hh.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for text in stderr:
        text = LOG_TIME.sub("", text)
        for needle in DISTINCTIVE:
            assert needle not in text, f"{needle!r} leaked into the log"
    assert "stored" in "".join(stderr)   # the debug log did run: the check above is not vacuous


def test_unassigned_readings_wait(config: Path, capture: Path) -> None:
    run(config, "replay", str(capture))
    waiting = json.loads(run(config, "records", "unassigned", "--json").stdout)
    assert len(waiting["readings"]) == 3


def test_decode_prints_fields_reading_and_fhir(config: Path) -> None:
    result = run(config, "decode", "bls.measurement", BP_FRAME, "--fhir", "--json")
    document = json.loads(result.stdout)
    frame = document["frames"][0]
    assert frame["fields"]["systolic"] == "173"
    assert frame["readings"][0]["kind"] == "blood_pressure"
    codes = [o["code"]["coding"][0]["code"] for o in frame["observations"]]
    assert codes == ["85354-9", "8867-4"]


def test_errors_are_one_line_with_exit_codes(config: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HEALTHHUT_CONFIG": str(config)}
    unknown = subprocess.run([*HEALTHHUT, "decode", "no.such.codec", "00"], capture_output=True, text=True,
                             env=env, timeout=60)
    assert unknown.returncode == 2
    assert unknown.stderr.count("\n") == 1 and "unknown codec" in unknown.stderr
    bad_frame = subprocess.run([*HEALTHHUT, "decode", "bls.measurement", "0678"], capture_output=True,
                               text=True, env=env, timeout=60)
    assert bad_frame.returncode == 1 and "Traceback" not in bad_frame.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[store]\npaht = 1\n", encoding="utf-8")
    bad_config = subprocess.run([*HEALTHHUT, "--config", str(broken), "records", "patients"],
                                capture_output=True, text=True, timeout=60)
    assert bad_config.returncode == 2
    assert f"{broken}: store.paht: unknown key" in bad_config.stderr
    assert "Traceback" not in bad_config.stderr


def test_db_migrate_check_backup(config: Path, tmp_path: Path) -> None:
    migrated = json.loads(run(config, "db", "migrate", "--json").stdout)
    assert migrated["up_to_date"] is True
    checked = json.loads(run(config, "db", "check", "--json").stdout)
    assert checked["integrity"] == "ok"
    backup = tmp_path / "backup.db"
    run(config, "db", "backup", str(backup))
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


def test_demo_runs_on_defaults(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    env.pop("HEALTHHUT_CONFIG", None)
    result = subprocess.run([*HEALTHHUT, "demo", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert len(document["observations"]) >= 6
    assert (tmp_path / "data" / "healthhut" / "healthhut.db").exists()
