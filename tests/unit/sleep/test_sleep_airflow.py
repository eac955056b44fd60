"""Reference §4.5 synthetic airflow check: apnea, hypopnea under 3 % and 4 % rules, 25 % reduction ignored."""

from __future__ import annotations

import numpy as np
import pytest

from healthhut.records.sleep.airflow import HypopneaRule, detect_respiratory_events, merged_runs
from healthhut.records.sleep.series import Channel


def breathing(seconds: int, fs: float, segments: list[tuple[float, float, float]], seed: int = 1) -> np.ndarray:
    """0.25 Hz sine breathing, amplitude 1 with a slow 37-s modulation, +0.2 offset, light noise.

    `segments` are (start_s, end_s, amplitude) overrides.
    """
    t = np.arange(int(seconds * fs)) / fs
    amp = 1 + 0.05 * np.sin(2 * np.pi * t / 37)
    for a, b, value in segments:
        amp[(t >= a) & (t < b)] = value
    return amp * np.sin(2 * np.pi * 0.25 * t) + 0.2 + np.random.default_rng(seed).normal(0, 0.01, len(t))


def dip(seconds: int, centre: int, depth: int) -> np.ndarray:
    spo2 = np.full(seconds, 96.0)
    for i in range(-8, 9):
        spo2[centre + i] = np.round(96 - max(0.0, depth - abs(i) / 2))
    return spo2


@pytest.mark.parametrize("fs", [10.0, 25.0])
@pytest.mark.parametrize("rule", list(HypopneaRule))
def test_reference_synthetic_check(fs: float, rule: HypopneaRule) -> None:
    flow = breathing(1200, fs, [(300, 370, 0.03), (600, 632, 0.5), (900, 940, 0.75)])
    result = detect_respiratory_events(Channel(flow, fs), dip(1200, 645, 4), rule)
    kinds = [(e.kind, e.onset_s, e.duration_s) for e in result.events]
    assert len(kinds) == 2, kinds            # the 25 % reduction at 900 s is no event
    apnea, hypopnea = result.events
    assert apnea.kind == "apnea" and abs(apnea.onset_s - 300) <= 3 and abs(apnea.duration_s - 70) <= 3
    assert hypopnea.kind == "hypopnea" and abs(hypopnea.onset_s - 600) <= 3
    assert abs(hypopnea.duration_s - 32) <= 4


def test_hypopnea_needs_the_rules_desaturation() -> None:
    flow = breathing(1200, 10.0, [(600, 632, 0.5)])
    three_point = dip(1200, 645, 3)
    assert [e.kind for e in detect_respiratory_events(Channel(flow, 10.0), three_point,
                                                      HypopneaRule.AASM_1A_3PCT).events] == ["hypopnea"]
    assert detect_respiratory_events(Channel(flow, 10.0), three_point, HypopneaRule.AASM_1B_4PCT).events == ()
    assert detect_respiratory_events(Channel(flow, 10.0), None, HypopneaRule.AASM_1A_3PCT).events == ()


def test_ten_second_apnea_is_kept_and_eight_second_pause_is_not() -> None:
    flow = breathing(900, 25.0, [(300, 310, 0.0), (600, 608, 0.0)])
    events = detect_respiratory_events(Channel(flow, 25.0), None, HypopneaRule.AASM_1A_3PCT).events
    assert [(e.kind, round(e.onset_s)) for e in events] == [("apnea", 300)]
    assert abs(events[0].duration_s - 10) <= 2


def test_disconnected_flow_sensor_is_invalid_not_an_apnea() -> None:
    flow = breathing(900, 10.0, [])
    flow[3000:6000] = 0.2          # 300 s of an exactly constant value
    result = detect_respiratory_events(Channel(flow, 10.0), None, HypopneaRule.AASM_1A_3PCT)
    assert result.events == ()
    assert not result.valid_flow[310:590].any()


def test_merged_runs_joins_one_second_gaps_only() -> None:
    mask = np.array([1, 1, 0, 1, 1, 0, 0, 1], dtype=bool)
    starts, ends = merged_runs(mask, 2)
    assert starts.tolist() == [0, 7] and ends.tolist() == [5, 8]


def test_apneas_are_typed_from_the_effort_channel() -> None:
    from healthhut.records.sleep.analysis import analyse_night
    from healthhut.records.sleep.synthetic import NightSpec, PlantedEvent, synthetic_night

    kinds = ["obstructive", "central", "mixed"] * 4
    events = tuple(PlantedEvent(300 + 200 * k, 30 + 4 * (k % 3), 0.03, desat_depth=4, effort=kind)
                   for k, kind in enumerate(kinds))
    night = synthetic_night(NightSpec(hours=1.0, flow_hz=25.0, effort_hz=10.0, events=events))
    analysis = analyse_night(night)
    found = [e.subtype for e in analysis.events if e.kind == "apnea"]
    assert found == kinds
    assert analysis.metrics.apnea_types == {"obstructive": 4, "central": 4, "mixed": 4}
    assert "typed from the effort channel" in analysis.rules
    untyped = analyse_night(synthetic_night(NightSpec(hours=1.0, flow_hz=25.0, events=events)))
    assert untyped.metrics.apnea_types == {"unclassified": 12} and "not typed" in untyped.rules
