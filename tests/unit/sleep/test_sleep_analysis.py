"""End-to-end analysis of synthetic nights with planted events; tolerances stated per assertion."""

from __future__ import annotations

from dataclasses import replace

import pytest

from healthhut.records.sleep.airflow import HypopneaRule
from healthhut.records.sleep.analysis import AnalysisSettings, NightAnalysis, analyse_night
from healthhut.records.sleep.severity import Severity, hypoxaemia_grade, severity_for_index
from healthhut.records.sleep.synthetic import NightSpec, PlantedDesaturation, osa_night, synthetic_night

JSON_KEYS = {"ahi", "odi3", "odi4", "t90_minutes", "nadir_spo2", "mean_spo2", "longest_apnea_seconds",
             "apnea_count", "hypopnea_count", "valid_hours", "severity", "rules"}


@pytest.fixture(scope="module")
def osa() -> tuple[NightAnalysis, NightSpec, int, int]:
    spec, apneas, hypopneas = osa_night(8.0)
    return analyse_night(synthetic_night(spec)), spec, apneas, hypopneas


def test_planted_apneas_and_hypopneas_are_counted(osa: tuple[NightAnalysis, NightSpec, int, int]) -> None:
    analysis, _, apneas, hypopneas = osa
    m = analysis.metrics
    assert m.apnea_count == apneas            # exact: every planted apnea, nothing else
    assert m.hypopnea_count == hypopneas
    # monitoring time = 8 h minus the 30-min finger-out gap (+- fragment/edge seconds)
    assert m.monitoring_hours is not None and abs(m.monitoring_hours - 7.5) < 0.01
    assert m.ahi is not None and abs(m.ahi - (apneas + hypopneas) / 7.5) < 0.05
    assert m.severity is Severity.MODERATE and m.severity_basis == "REI"


def test_longest_planted_apnea_of_70_s_is_reported(osa: tuple[NightAnalysis, NightSpec, int, int]) -> None:
    analysis, spec, _, _ = osa
    assert max(e.duration_s for e in spec.events) == 70
    assert analysis.metrics.longest_apnea_seconds is not None
    assert abs(analysis.metrics.longest_apnea_seconds - 70) <= 3       # reference: +-3 s is normal


def test_event_times_match_planted_onsets(osa: tuple[NightAnalysis, NightSpec, int, int]) -> None:
    analysis, spec, _, _ = osa
    found = [e for e in analysis.events if e.kind in ("apnea", "hypopnea")]
    assert len(found) == len(spec.events)
    for planted, event in zip(spec.events, found, strict=True):
        assert abs(event.onset_s - planted.onset_s) <= 3
        assert abs(event.duration_s - planted.duration_s) <= 4
        assert (event.start - analysis.start).total_seconds() == pytest.approx(event.onset_s)


def test_oximetry_side_of_the_osa_night(osa: tuple[NightAnalysis, NightSpec, int, int]) -> None:
    analysis, spec, _, _ = osa
    m = analysis.metrics
    planted = len(spec.events)      # every event has a 4-5 point desaturation
    assert m.desaturation3_count == planted
    assert m.odi3 is not None and abs(m.odi3 - planted / 7.5) < 0.1
    assert abs(m.oximetry_valid_hours - 7.5) < 0.01
    assert m.nadir_spo2 is not None and 89 <= m.nadir_spo2 <= 91      # 96 - 5, +- rounding noise
    assert "7.5 h valid" in analysis.data_quality and "8.0 h recorded" in analysis.data_quality


def test_desaturations_of_known_depth_without_airflow() -> None:
    dips = tuple(PlantedDesaturation(600 + 300 * k, depth) for k, depth in enumerate([3, 4, 6, 8, 12] * 10))
    spec = NightSpec(hours=5.0, flow_hz=None, desaturations=dips, spo2_noise=0.0)
    analysis = analyse_night(synthetic_night(spec))
    m = analysis.metrics
    assert m.ahi is None and m.apnea_count is None and m.longest_apnea_seconds is None
    assert m.desaturation3_count == 50 and m.desaturation4_count == 40
    assert m.odi3 == pytest.approx(10.0) and m.odi4 == pytest.approx(8.0)
    assert m.nadir_spo2 == 84
    # each 8- and 12-point dip spends a known number of whole seconds below 90 %: count them from the shape
    assert m.t90_minutes is not None and m.t90_minutes > 0
    assert m.severity is Severity.MILD and m.severity_basis == "ODI3"
    assert "not a diagnosis" in analysis.rules
    assert all(e.kind == "desaturation" for e in analysis.events)
    drops = sorted({round(e.spo2_drop or 0) for e in analysis.events})
    assert drops == [3, 4, 6, 8, 12]


def test_t90_counts_seconds_below_90_exactly() -> None:
    # depth 8 from 96, rounded: fall 96 - 0.8t is 89, 88 at t = 9, 10 (2 s); hold 10 s at 88;
    # rise 88 + 0.8t is 89 at t = 1 and 90 at t = 2 (1 s): 13 s below 90 % per dip
    dips = tuple(PlantedDesaturation(600 + 300 * k, 8) for k in range(10))
    analysis = analyse_night(synthetic_night(NightSpec(hours=1.5, flow_hz=None, desaturations=dips,
                                                       spo2_noise=0.0)))
    assert analysis.metrics.t90_minutes == pytest.approx(10 * 13 / 60)


def test_four_percent_rule_changes_hypopneas_and_basis() -> None:
    spec, apneas, _ = osa_night(6.0)
    three_point = replace(spec, events=tuple(replace(e, desat_depth=3) if e.flow_fraction >= 0.1 else e
                                             for e in spec.events), spo2_noise=0.0)
    night = synthetic_night(three_point)
    a3 = analyse_night(night)
    a4 = analyse_night(night, AnalysisSettings(hypopnea_rule=HypopneaRule.AASM_1B_4PCT))
    assert a3.metrics.hypopnea_count and a3.metrics.hypopnea_count > 0
    assert a4.metrics.hypopnea_count == 0 and a4.metrics.apnea_count == apneas
    assert "rule 1B" in a4.rules and "rule 1A" in a3.rules


def test_short_recording_is_flagged_insufficient() -> None:
    analysis = analyse_night(synthetic_night(NightSpec(hours=2.0, flow_hz=None)))
    assert analysis.insufficient and "insufficient recording" in analysis.data_quality


def test_json_has_the_stable_keys(osa: tuple[NightAnalysis, NightSpec, int, int]) -> None:
    data = osa[0].to_json()
    assert data.keys() >= JSON_KEYS
    assert data["severity"] == "moderate" and isinstance(data["rules"], str) and "AASM" in data["rules"]
    assert isinstance(data["apnea_count"], int) and isinstance(data["events"], list)


@pytest.mark.parametrize(("index", "band"), [(None, None), (0.0, Severity.NORMAL), (4.99, Severity.NORMAL),
                                             (5.0, Severity.MILD), (14.9, Severity.MILD),
                                             (15.0, Severity.MODERATE), (29.99, Severity.MODERATE),
                                             (30.0, Severity.SEVERE), (75.0, Severity.SEVERE)])
def test_severity_band_boundaries(index: float | None, band: Severity | None) -> None:
    assert severity_for_index(index) is band


def test_hypoxaemia_grades() -> None:
    assert [hypoxaemia_grade(v) for v in (None, 93, 90, 89, 85, 84, 80, 79)] == [
        None, Severity.NORMAL, Severity.NORMAL, Severity.MILD, Severity.MILD, Severity.MODERATE,
        Severity.MODERATE, Severity.SEVERE]


def test_events_during_an_oximetry_gap_are_left_out_with_their_time() -> None:
    from healthhut.records.sleep.synthetic import PlantedEvent

    events = tuple(PlantedEvent(600 + 300 * k, 30, 0.03, desat_depth=5) for k in range(10))
    gap = (600 + 300 * 4 - 60, 200)          # finger out across the fifth apnea only
    analysis = analyse_night(synthetic_night(NightSpec(hours=1.0, flow_hz=10.0, events=events, finger_out=(gap,))))
    m = analysis.metrics
    assert m.apnea_count == 9
    assert m.monitoring_hours is not None and abs(m.monitoring_hours - (3600 - 200) / 3600) < 0.005
    assert m.ahi == pytest.approx(9 / m.monitoring_hours)
