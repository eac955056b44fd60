"""Synthetic nights with planted events (apneas, hypopneas, desaturations, finger-out gaps) for tests,
benchmarks and demos. Deterministic for a given seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from healthhut.readings import Unit
from healthhut.records.sleep.series import Channel, NightRecording

BASE_SPO2 = 96.0
BREATH_HZ = 0.25


@dataclass(frozen=True, slots=True)
class PlantedEvent:
    """A respiratory event on the flow channel, optionally with the desaturation that follows it.

    `flow_fraction` is the remaining excursion (0.03 for an apnea, 0.5 for a hypopnea). The SpO2 dip starts
    `desat_delay_s` after the onset, falls over 10 s, holds 5 s and recovers over 10 s (circulation delay).
    """

    onset_s: int
    duration_s: int
    flow_fraction: float
    desat_depth: int = 0
    desat_delay_s: int = 15
    effort: str = "obstructive"     # effort channel during the event: obstructive, central or mixed


@dataclass(frozen=True, slots=True)
class PlantedDesaturation:
    onset_s: int
    depth: int
    fall_s: int = 10
    hold_s: int = 10
    rise_s: int = 10


@dataclass(frozen=True, slots=True)
class NightSpec:
    hours: float
    flow_hz: float | None = 25.0
    events: tuple[PlantedEvent, ...] = ()
    desaturations: tuple[PlantedDesaturation, ...] = ()
    finger_out: tuple[tuple[int, int], ...] = ()   # (onset_s, duration_s): SpO2 sentinel 127, pulse invalid
    spo2_noise: float = 0.3                         # SD of jitter before rounding to whole percent
    flow_noise: float = 0.01
    effort_hz: float | None = None                  # add a thoracic effort channel at this rate
    seed: int = 7
    start: datetime = field(default_factory=lambda: datetime(2026, 11, 28, 22, 0, tzinfo=UTC))


def desat_shape(base: float, depth: float, fall: int, hold: int, rise: int) -> np.ndarray:
    """The reference's desat(base, depth, fall, hold, rise) shape helper (§4.4), unrounded."""
    down = base - depth * np.arange(1, fall + 1) / fall
    flat = np.full(hold, base - depth)
    up = base - depth + depth * np.arange(1, rise + 1) / rise
    return np.concatenate((down, flat, up))


def _apply_dip(spo2: np.ndarray, onset: int, shape: np.ndarray) -> None:
    end = min(onset + len(shape), len(spo2))
    if onset < end:
        spo2[onset:end] = np.minimum(spo2[onset:end], shape[: end - onset])


def synthetic_night(spec: NightSpec) -> NightRecording:
    rng = np.random.default_rng(spec.seed)
    seconds = int(spec.hours * 3600)
    spo2 = np.full(seconds, BASE_SPO2)
    for ev in spec.events:
        if ev.desat_depth:
            _apply_dip(spo2, ev.onset_s + ev.desat_delay_s, desat_shape(BASE_SPO2, ev.desat_depth, 10, 5, 10))
    for d in spec.desaturations:
        _apply_dip(spo2, d.onset_s, desat_shape(BASE_SPO2, d.depth, d.fall_s, d.hold_s, d.rise_s))
    spo2 = np.round(spo2 + rng.normal(0.0, spec.spo2_noise, seconds))
    spo2 = np.minimum(spo2, 100.0)
    pulse = np.round(62.0 + 3.0 * np.sin(np.arange(seconds) / 600.0) + rng.normal(0.0, 1.0, seconds))
    off = np.zeros(seconds, dtype=bool)
    for onset, duration in spec.finger_out:
        off[onset:onset + duration] = True
    spo2[off] = 127.0          # the CMS50 "finger out" sentinel: must be rejected by the validity range
    pulse[off] = np.nan
    airflow = None
    if spec.flow_hz:
        n = int(seconds * spec.flow_hz)
        t = np.arange(n) / spec.flow_hz
        amplitude = 1.0 + 0.05 * np.sin(2 * np.pi * t / 37.0)
        for ev in spec.events:
            a, b = int(ev.onset_s * spec.flow_hz), int((ev.onset_s + ev.duration_s) * spec.flow_hz)
            amplitude[a:b] = ev.flow_fraction
        flow = amplitude * np.sin(2 * np.pi * BREATH_HZ * t) + 0.2 + rng.normal(0.0, spec.flow_noise, n)
        airflow = Channel(flow, spec.flow_hz, Unit.ONE, "Flow")
    effort = _effort(spec, seconds, rng) if spec.effort_hz else None
    return NightRecording(start=spec.start, spo2=Channel(spo2, 1.0, Unit.PERCENT, "SpO2"),
                          pulse=Channel(pulse, 1.0, Unit.PER_MINUTE, "Pulse"), airflow=airflow, effort=effort,
                          source="synthetic")


def _effort(spec: NightSpec, seconds: int, rng: np.random.Generator) -> Channel:
    """Thoracic effort: continues (obstructive), stops (central), or stops for the first half (mixed)."""
    rate = spec.effort_hz or 10.0
    n = int(seconds * rate)
    t = np.arange(n) / rate
    amplitude = np.ones(n)
    for ev in spec.events:
        a, b = int(ev.onset_s * rate), int((ev.onset_s + ev.duration_s) * rate)
        if ev.effort == "central":
            amplitude[a:b] = 0.02
        elif ev.effort == "mixed":
            amplitude[a:(a + b) // 2] = 0.02
        else:
            amplitude[a:b] = 1.3      # obstructive: effort against a closed airway, often larger
    wave = amplitude * np.sin(2 * np.pi * BREATH_HZ * t + 0.6) + rng.normal(0.0, spec.flow_noise, n)
    return Channel(wave, rate, Unit.ONE, "Thor")


def osa_night(hours: float = 8.0, *, flow_hz: float | None = 25.0, seed: int = 7) -> tuple[NightSpec, int, int]:
    """A moderate-OSA night: apneas (one of 70 s) and hypopneas every ~3 min in the middle of the night,
    a 30-minute finger-out gap. Returns the spec and the planted apnea and hypopnea counts."""
    events: list[PlantedEvent] = []
    onset = 1800
    k = 0
    end = int(hours * 3600) - 1800
    while onset < end:
        if 3 * 3600 - 120 <= onset < 3 * 3600 + 1800 + 300:   # around the finger-out half hour: none
            onset += 180
            continue
        if k % 3 == 2:
            events.append(PlantedEvent(onset, 20 + (k % 5) * 3, 0.5, desat_depth=4))
        else:
            duration = 70 if k == 40 else 15 + (k % 7) * 4
            events.append(PlantedEvent(onset, duration, 0.03, desat_depth=5))
        onset += 180
        k += 1
    spec = NightSpec(hours=hours, flow_hz=flow_hz, events=tuple(events),
                     finger_out=((3 * 3600, 1800),), seed=seed)
    apneas = sum(1 for e in events if e.flow_fraction < 0.1)
    return spec, apneas, len(events) - apneas
