"""Property tests: any series (short, empty, all invalid, sentinels, odd rates) analyses without crashing."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from healthhut.readings import Unit
from healthhut.records.sleep.analysis import analyse_night
from healthhut.records.sleep.oximetry import find_desaturations
from healthhut.records.sleep.series import Channel, NightRecording
from healthhut.records.sleep.severity import severity_for_index

SPO2_VALUES = st.one_of(st.integers(80, 100).map(float), st.sampled_from([0.0, 127.0, 255.0, float("nan"), 70.0]))


@settings(max_examples=60, deadline=None)
@given(spo2=st.lists(SPO2_VALUES, max_size=1500),
       flow_seconds=st.one_of(st.none(), st.integers(0, 400)),
       flow_rate=st.sampled_from([8.0, 10.0, 12.5, 25.0]),
       seed=st.integers(0, 10))
def test_any_night_analyses(spo2: list[float], flow_seconds: int | None, flow_rate: float, seed: int) -> None:
    airflow = None
    if flow_seconds is not None:
        rng = np.random.default_rng(seed)
        t = np.arange(int(flow_seconds * flow_rate)) / flow_rate
        flow = np.sin(2 * np.pi * 0.25 * t) * rng.choice([0.0, 0.05, 1.0], size=len(t) // 50 + 1).repeat(50)[:len(t)]
        airflow = Channel(flow, flow_rate, Unit.ONE)
    night = NightRecording(start=datetime(2026, 1, 1, tzinfo=UTC), spo2=Channel(np.array(spo2), 1.0),
                           airflow=airflow)
    analysis = analyse_night(night)
    m = analysis.metrics
    assert m.valid_hours <= m.recorded_hours + 1e-9
    assert m.oximetry_valid_hours * 3600 <= len(spo2)
    if m.nadir_spo2 is not None:
        assert 50 <= m.nadir_spo2 <= (m.mean_spo2 or 0) <= 100
    assert (m.desaturation3_count or 0) >= (m.desaturation4_count or 0) >= 0
    headline = m.ahi if m.ahi is not None else m.odi3
    assert m.severity is severity_for_index(headline)
    assert analysis.to_json()["rules"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(85, 99).map(float), min_size=1, max_size=600), st.sampled_from([3.0, 4.0]))
def test_desaturation_events_are_ordered_and_deep_enough(values: list[float], drop: float) -> None:
    f = np.array(values)
    events = find_desaturations(f, drop)
    ends = -1
    for e in events:
        assert e.onset > ends or e.onset == ends      # a re-based event may start where the last ended
        assert e.onset <= e.nadir_at <= e.end and e.duration_s >= 10 and e.drop >= drop
        ends = e.end
