"""`healthhut sleep analyze|import` as a subprocess on a real SQLite store."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from healthhut.drivers.codecs.viatom_file import ViatomFileHeader, ViatomRecord, encode_viatom_file
from healthhut.records.sleep.edf_import import write_edf
from healthhut.records.sleep.synthetic import NightSpec, PlantedEvent, synthetic_night
from healthhut.records.store import RecordStore

RESIDENT = "110101195307154321"
PATIENT = f"urn:oid:2.16.156.10011.1.1|{RESIDENT}"
JSON_KEYS = {"ahi", "odi3", "odi4", "t90_minutes", "nadir_spo2", "mean_spo2", "longest_apnea_seconds",
             "apnea_count", "hypopnea_count", "valid_hours", "severity", "rules"}


def run(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Successful paths run with --debug (all logs on, to check none carries the resident); failing ones
    without, to see the one-line error staff would see."""
    env = {**os.environ, "HEALTHHUT_CONFIG": str(config)}
    debug = ["--debug"] if check else []
    result = subprocess.run([sys.executable, "-m", "healthhut", *debug, *args], capture_output=True,
                            text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:{result.stdout}\nstderr:{result.stderr}")
    return result


@pytest.fixture(scope="module")
def edf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    events = tuple(PlantedEvent(600 + 200 * k, 70 if k == 7 else 18 + k, 0.03 if k % 3 else 0.5, desat_depth=5)
                   for k in range(24))
    night = replace(synthetic_night(NightSpec(hours=1.8, flow_hz=25.0, events=events)), equipment="HSAT-T3")
    path = tmp_path_factory.mktemp("edf") / "night.edf"
    write_edf(path, night, annotations=[(2000.0, 70.0, "Obstructive Apnea")])
    return path


def test_analyze_edf_json_and_plot(config: Path, edf: Path, tmp_path: Path) -> None:
    plot = tmp_path / "night.png"
    result = run(config, "sleep", "analyze", str(edf), "--json", "--plot", str(plot))
    data = json.loads(result.stdout)
    assert data.keys() >= JSON_KEYS
    assert data["apnea_count"] == 16 and data["hypopnea_count"] == 8
    assert abs(data["longest_apnea_seconds"] - 70) <= 3
    assert data["severity"] == "mild" and "rule 1A" in data["rules"]      # 24 events in 1.8 h: 13.3/h
    assert data["scored_events"] == {"obstructive apnea": 1}
    assert data["start"] == "2026-11-28T22:00:00+08:00"        # EDF wall clock in the site's zone
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = run(config, "sleep", "analyze", str(edf), "--rule", "4").stdout
    assert "rule 1B" in text and "longest apnea" in text


def test_import_stores_observations_once_and_reanalyses_from_the_store(config: Path, edf: Path,
                                                                        tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    first_run = run(config, "sleep", "import", str(edf), "--patient", PATIENT, "--json", "--report", str(report))
    first = json.loads(first_run.stdout)
    assert first["stored"]["outcome"] == "stored" and len(first["stored"]["observation_ids"]) >= 10
    diagnostic = json.loads(report.read_text(encoding="utf-8"))
    assert diagnostic["resourceType"] == "DiagnosticReport"
    # the night, its summaries and the report grouping them are all stored (the report last, with the plot)
    assert len(diagnostic["result"]) == len(first["stored"]["observation_ids"]) - 1
    assert first["diagnostic_report"] == diagnostic and first["stored"]["duplicates"] == 0
    with sqlite3.connect(tmp_path / "db" / "hh.db") as conn:
        stored_rows = conn.execute("SELECT id, resource_type, identifier, resource_json FROM observations "
                                   "ORDER BY id").fetchall()
    assert [r[0] for r in stored_rows] == first["stored"]["observation_ids"]
    assert [r[1] for r in stored_rows] == ["Observation"] * (len(stored_rows) - 1) + ["DiagnosticReport"]
    assert json.loads(stored_rows[-1][3]) == diagnostic
    assert [r["identifier"]["value"] for r in diagnostic["result"]] == [r[2] for r in stored_rows[:-1]]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "presentedForm" not in diagnostic
    else:
        assert base64.b64decode(diagnostic["presentedForm"][0]["data"])[:8] == b"\x89PNG\r\n\x1a\n"
    again = run(config, "sleep", "import", str(edf), "--patient", PATIENT, "--json")
    assert json.loads(again.stdout)["stored"]["outcome"] == "duplicate"
    listed = json.loads(run(config, "records", "show", PATIENT, "--json").stdout)["observations"]
    assert [e["values"][0]["conclusion"] for e in listed if e["code"] == "sleep-screening-report"] == [
        diagnostic["conclusion"]]
    assert "REI" in run(config, "records", "show", PATIENT).stdout   # the clinician's table shows the report
    with sqlite3.connect(tmp_path / "db" / "hh.db") as conn:
        assert conn.execute("SELECT count(*) FROM observations").fetchone()[0] == len(stored_rows)
    stored = json.loads(run(config, "sleep", "analyze", "--reading", str(first["stored"]["reading_id"]),
                            "--json").stdout)
    for key in ("ahi", "odi3", "apnea_count", "hypopnea_count", "longest_apnea_seconds", "nadir_spo2"):
        assert stored[key] == first[key], key
    store = RecordStore.open(str(tmp_path / "db" / "hh.db"))
    try:
        assert sum(store.outbox_counts().values()) == len(first["stored"]["observation_ids"])
    finally:
        store.close()
    for result in (first_run, again):
        assert RESIDENT not in result.stderr        # --debug logs carry record ids, never the resident


def test_truncated_edf_import_fails_clearly_and_stores_nothing(config: Path, edf: Path, tmp_path: Path) -> None:
    broken = tmp_path / "cut.edf"
    broken.write_bytes(edf.read_bytes()[:-4096])
    result = run(config, "sleep", "import", str(broken), "--patient", PATIENT, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("healthhut: truncated EDF file") and "Traceback" not in result.stderr
    db = tmp_path / "db" / "hh.db"
    if db.exists():
        store = RecordStore.open(str(db))
        try:
            assert sum(store.outbox_counts().values()) == 0
        finally:
            store.close()


def test_viatom_file_and_usage_errors(config: Path, tmp_path: Path) -> None:
    records = [ViatomRecord(96, 60, 0, 0)] * 2000 + [ViatomRecord(None, None, 0, 0)] * 50
    header = ViatomFileHeader(3, 0, datetime(2024, 5, 17, 22, 30, 15), 0, 4 * len(records), 96, 96, 0, 0, 0, 0,
                              0, Decimal(0), 0)
    ring = tmp_path / "20240517223015"
    ring.write_bytes(encode_viatom_file(header, records))
    data = json.loads(run(config, "sleep", "analyze", str(ring), "--json").stdout)
    assert data["ahi"] is None and data["odi3"] == 0.0 and data["severity"] == "normal"
    assert abs(data["valid_hours"] - 8000 / 3600) < 0.01 and "not a diagnosis" in data["rules"]
    assert run(config, "sleep", "analyze", check=False).returncode == 2
    junk = tmp_path / "junk.txt"
    junk.write_text("hello", encoding="utf-8")
    bad = run(config, "sleep", "analyze", str(junk), check=False)
    assert bad.returncode == 1 and "not a recording" in bad.stderr
