"""Artefact handling for a 1 Hz SpO2 series: validity mask, short-fragment removal, 3-point median filter.

Implements steps 1-3 of reference/serial-and-sleep.md §4.4. Invalid samples are NaN throughout; nothing here
invents a value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from healthhut.records.sleep.series import BoolArray, FloatArray

VALID_SPO2_RANGE = (50.0, 100.0)     # removes the device sentinels 0, 127, 255 and "below 61 %" 0xFF
VALID_PULSE_RANGE = (25.0, 250.0)
MIN_FRAGMENT_S = 10                  # valid islands shorter than this (around finger re-insertion) are dropped


@dataclass(frozen=True, slots=True)
class ArtefactSettings:
    valid_range: tuple[float, float] = VALID_SPO2_RANGE
    min_fragment_s: int = MIN_FRAGMENT_S


def runs(mask: BoolArray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the maximal True runs of `mask`."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return edges[0::2], edges[1::2]


def in_range(samples: FloatArray, low: float, high: float) -> FloatArray:
    """Samples outside [low, high] (and NaN) become NaN."""
    with np.errstate(invalid="ignore"):
        keep = (samples >= low) & (samples <= high)
    return np.where(keep, samples, np.nan)


def validity_mask(raw: FloatArray, sensor_off: BoolArray | None, settings: ArtefactSettings) -> FloatArray:
    """Step 1: out-of-range values, sentinels and device-flagged seconds become NaN."""
    s = in_range(raw, *settings.valid_range)
    if sensor_off is not None:
        n = min(len(s), len(sensor_off))
        flagged = np.zeros(len(s), dtype=bool)
        flagged[:n] = sensor_off[:n]
        s = np.where(flagged, np.nan, s)
    return s


def remove_short_fragments(s: FloatArray, min_len: int) -> FloatArray:
    """Step 2: valid islands shorter than `min_len` samples bounded by invalid samples become NaN.

    An island touching the start of the record is bounded by the record edge; the reference only names the
    record end explicitly, and we treat both edges alike.
    """
    starts, ends = runs(~np.isnan(s))
    short = (ends - starts) < min_len
    if not short.any():
        return s
    out = s.copy()
    drop = np.zeros(len(s) + 1, dtype=np.int64)
    np.add.at(drop, starts[short], 1)
    np.add.at(drop, ends[short], -1)
    out[np.cumsum(drop[:-1]) > 0] = np.nan
    return out


def median3(s: FloatArray) -> FloatArray:
    """Step 3: f[t] = median(s[t-1], s[t], s[t+1]) where all three are valid, else s[t]."""
    if len(s) < 3:
        return s.copy()
    prev, cur, nxt = s[:-2], s[1:-1], s[2:]
    med = np.maximum(np.minimum(prev, cur), np.minimum(np.maximum(prev, cur), nxt))
    out = s.copy()
    all_valid = ~(np.isnan(prev) | np.isnan(cur) | np.isnan(nxt))
    out[1:-1] = np.where(all_valid, med, cur)
    return out


def clean_spo2(raw: FloatArray, sensor_off: BoolArray | None = None,
               settings: ArtefactSettings | None = None) -> FloatArray:
    """Steps 1-3 in order: the filtered series `f` every oximetry metric is computed from."""
    settings = settings or ArtefactSettings()
    s = validity_mask(raw, sensor_off, settings)
    s = remove_short_fragments(s, settings.min_fragment_s)
    return median3(s)


def clean_pulse(raw: FloatArray, spo2_valid: BoolArray | None = None) -> FloatArray:
    """Pulse outside a plausible range is invalid; so is pulse in seconds the SpO2 channel says finger-out."""
    p = in_range(raw, *VALID_PULSE_RANGE)
    if spo2_valid is not None:
        n = min(len(p), len(spo2_valid))
        p = p.copy()
        p[:n][~spo2_valid[:n]] = np.nan
        p[n:] = np.nan
    return p
