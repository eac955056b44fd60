"""Reference §4.4 test vectors A-E for artefact handling, ODI3/ODI4, T90, nadir and mean."""

from __future__ import annotations

import numpy as np
import pytest

from healthhut.records.sleep.artefacts import clean_spo2, median3, remove_short_fragments
from healthhut.records.sleep.oximetry import find_desaturations, odi, summarise


def desat(base: int, depth: int, fall: int, hold: int, rise: int) -> list[int]:
    """The reference's shape helper, with Python's round-half-even (the vectors agree with both roundings)."""
    out = [round(base - depth * t / fall) for t in range(1, fall + 1)]
    out += [base - depth] * hold
    out += [round(base - depth + depth * t / rise) for t in range(1, rise + 1)]
    return out


def vector_a() -> list[int]:
    return ([96] * 300 + desat(96, 4, 10, 5, 8) + [96] * 120 + desat(96, 2, 6, 4, 6) + [96] * 60
            + [96, 96, 70, 96, 96] + [96] * 60 + [0] * 30 + [127] * 5 + [96] * 4 + [255] * 5 + [96] * 200)


def vector_b() -> list[int]:
    out = [96] * 180
    for _ in range(30):
        out += desat(96, 8, 20, 10, 15) + [96] * 15
    return out + [96] * 180


def vector_c() -> list[int]:
    out = [94] * 180 + [round(94 - 8 * t / 20) for t in range(1, 21)]
    for _ in range(10):
        out += ([86 + round(4 * t / 12) for t in range(1, 13)] + [90] * 5
                + [90 - round(4 * t / 10) for t in range(1, 11)] + [86] * 5)
    return out + [86 + round(8 * t / 16) for t in range(1, 17)] + [94] * 120


def vector_d() -> list[int]:
    return ([95] * 600 + [round(95 - 13 * t / 45) for t in range(1, 46)] + [82] * 10
            + [round(82 + 13 * t / 15) for t in range(1, 16)] + [95] * 600)


def vector_e() -> list[int]:
    out = [95] * 180
    for k in range(30):
        out += desat(95, 4 if k % 3 == 0 else 3, 8, 6, 8) + [95] * 38
    return out + [95] * 180


def filtered(v: list[int]) -> np.ndarray:
    return clean_spo2(np.array(v, dtype=float))


def test_vector_lengths_match_the_reference() -> None:
    assert [len(v()) for v in (vector_a, vector_b, vector_c, vector_d, vector_e)] == [828, 2160, 656, 1270, 2160]


@pytest.mark.parametrize("drop", [3, 4])
def test_vector_a_artefacts(drop: int) -> None:
    f = filtered(vector_a())
    s = summarise(f)
    assert s.valid_seconds == 784            # 0/127/255 and the 4-s fragment are invalid
    assert s.t90_seconds == 0 and s.nadir == 92             # the 70 % spike is gone (median filter)
    assert s.mean is not None and round(s.mean, 1) == 95.9
    events = find_desaturations(f, drop)
    assert len(events) == 1                  # the 2-point dip is not counted
    assert events[0].onset == 302 and events[0].nadir == 92
    assert 17 <= events[0].duration_s <= 18
    assert round(odi(len(events), s.valid_seconds) or 0, 1) == 4.6


@pytest.mark.parametrize("drop", [3, 4])
def test_vector_b_cyclic_osa(drop: int) -> None:
    f = filtered(vector_b())
    s = summarise(f)
    events = find_desaturations(f, drop)
    assert len(events) == 30
    assert round(odi(len(events), s.valid_seconds) or 0, 1) == 50.0
    assert s.t90_seconds == 480 and round(s.ct90_percent or 0, 1) == 22.2
    assert s.nadir == 88 and round(s.mean or 0, 1) == 92.9
    assert max(e.duration_s for e in events) == 40


@pytest.mark.parametrize("drop", [3, 4])
def test_vector_c_incomplete_recovery_splits_events(drop: int) -> None:
    f = filtered(vector_c())
    s = summarise(f)
    events = find_desaturations(f, drop)
    assert len(events) == 11
    assert events[0].duration_s == 28
    assert all(abs(e.duration_s - 20) <= 2 for e in events[1:])
    assert round(odi(len(events), s.valid_seconds) or 0, 1) == 60.4
    assert s.t90_seconds == 255 and round(s.ct90_percent or 0, 1) == 38.9 and s.nadir == 86


@pytest.mark.parametrize("drop", [3, 4])
def test_vector_d_one_long_event(drop: int) -> None:
    f = filtered(vector_d())
    s = summarise(f)
    events = find_desaturations(f, drop)
    assert len(events) == 1
    assert events[0].duration_s == 64 and events[0].drop == 13
    assert round(odi(1, s.valid_seconds) or 0, 1) == 2.8
    assert s.t90_seconds == 44 and s.nadir == 82


def test_vector_e_three_versus_four_percent() -> None:
    f = filtered(vector_e())
    s = summarise(f)
    three, four = find_desaturations(f, 3), find_desaturations(f, 4)
    assert len(three) == 30 and round(odi(30, s.valid_seconds) or 0, 1) == 50.0
    assert len(four) == 10 and round(odi(10, s.valid_seconds) or 0, 1) == 16.7
    assert s.nadir == 91 and s.t90_seconds == 0


def test_median_filter_never_invents_values_next_to_gaps() -> None:
    s = np.array([96.0, np.nan, 70.0, 96.0, 96.0, 50.0, 96.0])
    f = median3(s)
    assert np.isnan(f[1])
    assert f[2] == 70.0          # a neighbour is invalid: kept as measured
    assert f[5] == 96.0          # single-second drop with valid neighbours: removed


def test_short_fragments_at_both_edges_are_removed() -> None:
    s = np.array([95.0] * 3 + [np.nan] + [95.0] * 12 + [np.nan] + [95.0] * 9)
    f = remove_short_fragments(s, 10)
    assert np.isnan(f[:3]).all() and np.isnan(f[-9:]).all()
    assert not np.isnan(f[4:16]).any()


def test_device_sensor_off_flags_invalidate_seconds() -> None:
    raw = np.full(100, 95.0)
    off = np.zeros(100, dtype=bool)
    off[40:60] = True
    f = clean_spo2(raw, off)
    assert summarise(f).valid_seconds == 80


def test_no_valid_samples_gives_no_metrics() -> None:
    s = summarise(clean_spo2(np.full(50, 255.0)))
    assert s.valid_seconds == 0 and s.nadir is None and s.mean is None and s.ct90_percent is None
    assert odi(0, 0) is None
