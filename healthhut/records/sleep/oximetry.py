"""Oximetry metrics from the filtered 1 Hz SpO2 series: desaturations, ODI, T90/CT90, nadir and mean.

Implements step 4-5 of reference/serial-and-sleep.md §4.4. The desaturation baseline is NOT fixed by AASM;
this is the reference's choice (max of the 120 s before the event, re-based from the end of the previous
event), documented there as one of several in use (OSCAR, psgscoring and pobm differ). Treat ODI values from
other software as comparable in trend, not to the decimal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from healthhut.records.sleep.series import FloatArray

BASELINE_WINDOW_S = 120
MIN_BASELINE_SAMPLES = 10
MIN_EVENT_S = 10
MAX_GAP_S = 10
T90_THRESHOLD = 90.0


@dataclass(frozen=True, slots=True)
class Desaturation:
    """One desaturation event, indices in seconds from the start of the series."""

    onset: int
    nadir_at: int
    end: int
    baseline: float
    nadir: float

    @property
    def drop(self) -> float:
        return self.baseline - self.nadir

    @property
    def duration_s(self) -> int:
        return self.end - self.onset


@dataclass(frozen=True, slots=True)
class OximetrySummary:
    valid_seconds: int
    t90_seconds: int
    ct90_percent: float | None
    nadir: float | None
    mean: float | None


def summarise(f: FloatArray) -> OximetrySummary:
    """Step 4: valid time, T90 (strictly < 90 %), CT90, nadir and mean over valid filtered samples."""
    valid = f[~np.isnan(f)]
    n = int(valid.size)
    if n == 0:
        return OximetrySummary(0, 0, None, None, None)
    t90 = int(np.count_nonzero(valid < T90_THRESHOLD))
    return OximetrySummary(n, t90, 100.0 * t90 / n, float(valid.min()), float(valid.mean()))


def _rolling_window_stats(f: FloatArray, window: int) -> tuple[FloatArray, np.ndarray]:
    """For every t: max and count of valid samples in [t - window, t - 1] (window not re-based)."""
    n = len(f)
    filled = np.where(np.isnan(f), -np.inf, f)
    padded = np.concatenate((np.full(window, -np.inf), filled))
    # windows[t] covers padded[t : t+window] == f[t-window : t]
    windows = sliding_window_view(padded, window)[:n]
    maxima = windows.max(axis=1)
    valid = np.concatenate(([0], np.cumsum(~np.isnan(f))))
    lo = np.maximum(np.arange(n) - window, 0)
    counts = valid[np.arange(n)] - valid[lo]
    return maxima, counts


def _walk_event(f: FloatArray, t: int, baseline: float, drop: float, max_gap: int) -> tuple[int, int, float]:
    """Step 4 of the scan: from the first low sample t, find the nadir and the end of the event."""
    n = len(f)
    nadir, nadir_at = float(f[t]), t
    peak, peak_at = -np.inf, t          # highest value reached after the nadir
    rebounded = False
    last_valid, gap = t, 0
    for k in range(t + 1, n):
        v = f[k]
        if v != v:  # NaN
            gap += 1
            if gap > max_gap:
                return last_valid, nadir_at, nadir
            continue
        gap, last_valid = 0, k
        if not rebounded and v < nadir:
            nadir, nadir_at = float(v), k
            peak, peak_at = -np.inf, k
        if v >= baseline - 1:
            return k, nadir_at, nadir
        if v > peak:
            peak, peak_at = float(v), k
        if peak - nadir >= drop:
            rebounded = True
        if rebounded and v <= peak - drop:
            return peak_at, nadir_at, nadir
    # end of data: the reference says N - 1; we stop at the last valid sample, which is the same for any
    # record that does not end in an invalid stretch
    return last_valid, nadir_at, nadir


def find_desaturations(f: FloatArray, drop: float, *, window: int = BASELINE_WINDOW_S,
                       min_baseline: int = MIN_BASELINE_SAMPLES, min_duration: int = MIN_EVENT_S,
                       max_gap: int = MAX_GAP_S) -> list[Desaturation]:
    """Step 5: desaturations of at least `drop` points from the pre-event baseline, lasting >= min_duration.

    Vectorised where the window is a plain trailing 120 s (precomputed rolling max); only the 120 s after each
    event, whose window is re-based at the previous event end, and the event walks themselves run in Python.
    """
    n = len(f)
    events: list[Desaturation] = []
    if n == 0:
        return events
    maxima, counts = _rolling_window_stats(f, window)
    with np.errstate(invalid="ignore"):
        plain_candidates = np.flatnonzero((counts >= min_baseline) & (f <= maxima - drop))
    t = 0
    last_end: int | None = None
    while t < n:
        if last_end is not None and t <= last_end + window:
            # re-based stretch: window is [last_end, t-1], usable with >= 1 valid sample
            stop = min(last_end + window + 1, n)
            seg = f[last_end:stop]
            running = np.fmax.accumulate(np.where(np.isnan(seg), -np.inf, seg))
            idx = np.arange(t, stop)
            base = running[idx - 1 - last_end]
            with np.errstate(invalid="ignore"):
                hits = np.flatnonzero(np.isfinite(base) & (f[idx] <= base - drop))
            if hits.size:
                t_cand = int(idx[hits[0]])
                baseline, lo = float(base[hits[0]]), last_end
            else:
                t = stop
                continue
        else:
            pos = int(np.searchsorted(plain_candidates, t))
            if pos == len(plain_candidates):
                break
            # past the re-based stretch, the window is the plain trailing one: precomputed
            t_cand = int(plain_candidates[pos])
            baseline, lo = float(maxima[t_cand]), max(t_cand - window, 0)
        win = f[lo:t_cand]
        with np.errstate(invalid="ignore"):
            near_top = np.flatnonzero(win >= baseline - 1)
        onset = lo + int(near_top[-1])
        end, nadir_at, nadir = _walk_event(f, t_cand, baseline, drop, max_gap)
        if end - onset >= min_duration:
            events.append(Desaturation(onset, nadir_at, end, baseline, nadir))
        last_end = end
        t = end + 1
    return events


def odi(events: int, valid_seconds: int) -> float | None:
    """Events per hour of valid oximetry time."""
    if valid_seconds <= 0:
        return None
    return events / (valid_seconds / 3600.0)
