"""EDF+ import: round trip of a night written with pyedflib, pyedflib's own sample file, broken files."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyedflib
import pytest

from healthhut.errors import SleepDataError
from healthhut.records.sleep.analysis import analyse_night
from healthhut.records.sleep.edf_import import check_header, read_edf, write_edf
from healthhut.records.sleep.synthetic import NightSpec, PlantedEvent, synthetic_night

SHANGHAI = ZoneInfo("Asia/Shanghai")


def write_night_edf(path: Path, spec: NightSpec, *, labels: tuple[str, str, str] = ("SpO2", "Pulse", "Flow"),
                    annotations: list[tuple[float, float | None, str]] | None = None) -> None:
    night = synthetic_night(spec)
    assert night.airflow is not None
    night = replace(night, airflow=replace(night.airflow, label=labels[2]))
    write_edf(path, night, annotations=annotations)
    if labels[:2] != ("SpO2", "Pulse"):      # relabel by hand: the label fields are fixed-width ASCII
        data = bytearray(path.read_bytes())
        for i, label in enumerate(labels[:2]):
            data[256 + 16 * i:256 + 16 * (i + 1)] = label.ljust(16).encode("ascii")
        path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def night_spec() -> NightSpec:
    events = tuple(PlantedEvent(600 + 240 * k, 70 if k == 5 else 20 + 2 * k, 0.03 if k % 4 else 0.5,
                                desat_depth=5) for k in range(20))
    return NightSpec(hours=1.75, flow_hz=25.0, events=events, finger_out=((5400, 300),))


def test_round_trip_night_matches_the_in_memory_analysis(tmp_path: Path, night_spec: NightSpec) -> None:
    path = tmp_path / "night.edf"
    write_night_edf(path, night_spec, annotations=[(1800.0, 70.0, "Obstructive Apnea"), (0.0, None, "Lights off")])
    night = read_edf(path, tz=SHANGHAI)
    assert night.start == datetime(2026, 11, 28, 22, 0, tzinfo=SHANGHAI)
    assert night.start.astimezone(UTC).hour == 14
    assert night.airflow is not None and night.airflow.rate_hz == 25.0 and night.airflow.label == "Flow"
    assert night.spo2 is not None and len(night.spo2.samples) == 6300
    imported = analyse_night(night).metrics
    original = analyse_night(synthetic_night(night_spec)).metrics
    assert imported.apnea_count == original.apnea_count == 15
    assert imported.hypopnea_count == original.hypopnea_count == 5
    assert imported.longest_apnea_seconds is not None and abs(imported.longest_apnea_seconds - 70) <= 3
    assert imported.odi3 == pytest.approx(original.odi3)
    assert imported.nadir_spo2 == original.nadir_spo2
    assert abs(imported.oximetry_valid_hours - (1.75 - 300 / 3600)) < 0.01    # sentinel 127 survived EDF
    kinds = {(e.kind, e.text, e.duration_s) for e in night.scored_events}
    assert ("obstructive apnea", "Obstructive Apnea", 70.0) in kinds
    assert ("marker", "Lights off", None) in kinds


def test_labels_are_matched_through_the_table_and_overrides(tmp_path: Path) -> None:
    spec = NightSpec(hours=0.2, flow_hz=10.0)
    path = tmp_path / "labels.edf"
    write_night_edf(path, spec, labels=("SaO2", "PR", "Chan 7"))
    night = read_edf(path, tz=UTC)
    assert night.spo2 is not None and night.pulse is not None and night.airflow is None
    night = read_edf(path, tz=UTC, channels={"airflow": "chan 7"})
    assert night.airflow is not None and night.airflow.rate_hz == 10.0
    with pytest.raises(SleepDataError, match="no signal labelled 'Thor'"):
        read_edf(path, tz=UTC, channels={"airflow": "Thor"})


def test_pyedflib_shipped_sample_file_imports() -> None:
    sample = Path(pyedflib.__file__).parent / "data" / "test_generator.edf"
    assert check_header(sample).startswith("EDF+C")
    with pytest.raises(SleepDataError, match="no SpO2 or airflow channel found") as caught:
        read_edf(sample, tz=UTC)
    assert "sine 1 Hz" in str(caught.value)
    night = read_edf(sample, tz=UTC, channels={"airflow": "sine 1 Hz"})
    assert night.start == datetime(2011, 4, 4, 12, 57, 2, tzinfo=UTC)
    assert night.airflow is not None and night.airflow.rate_hz == 200.0
    assert len(night.airflow.samples) == 600 * 200
    assert night.recorded_seconds == 600
    assert [(e.onset_s, e.text, e.kind) for e in night.scored_events] == [
        (0.0, "Recording starts", "marker"), (600.0, "Recording ends", "marker")]
    analysis = analyse_night(night)      # a steady 1 Hz sine: breathing without events
    assert analysis.metrics.apnea_count == 0 and analysis.metrics.hypopnea_count == 0
    assert "Oximetry" not in analysis.rules and analysis.metrics.odi3 is None


def test_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.edf"
    write_night_edf(path, NightSpec(hours=0.2, flow_hz=10.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(SleepDataError, match="truncated EDF file"):
        read_edf(path, tz=UTC)
    path.write_bytes(data[:600])
    with pytest.raises(SleepDataError, match="truncated EDF file"):
        read_edf(path, tz=UTC)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "shorter than the 256-byte header"),
    (b"hello, this is not a sleep study\n" * 20, "version field"),
    (b"0       " + b" " * 176 + b"abc     " + b" " * 68, "header size field is not a number"),
    (b"0       " + b" " * 176 + b"768     " + b" " * 44 + b"1       " + b"1       " + b"1   ", "does not match"),
])
def test_malformed_files_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.edf"
    path.write_bytes(content)
    with pytest.raises(SleepDataError, match=message):
        read_edf(path, tz=UTC)


def test_missing_file_is_a_sleep_data_error(tmp_path: Path) -> None:
    with pytest.raises(SleepDataError, match="cannot read"):
        read_edf(tmp_path / "absent.edf", tz=UTC)


def test_effort_channel_survives_edf_and_types_apneas(tmp_path: Path) -> None:
    kinds = ["obstructive", "central", "mixed"] * 2
    events = tuple(PlantedEvent(300 + 200 * k, 30, 0.03, desat_depth=4, effort=kind) for k, kind in enumerate(kinds))
    path = tmp_path / "typed.edf"
    write_edf(path, synthetic_night(NightSpec(hours=0.5, flow_hz=25.0, effort_hz=10.0, events=events)))
    night = read_edf(path, tz=UTC)
    assert night.effort is not None and night.effort.label == "Thor" and night.effort.rate_hz == 10.0
    assert [e.subtype for e in analyse_night(night).events if e.kind == "apnea"] == kinds
