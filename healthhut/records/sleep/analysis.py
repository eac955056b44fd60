"""End-to-end night analysis: NightRecording -> NightAnalysis (metrics, events, rules used, data quality)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from healthhut.errors import SleepDataError
from healthhut.records.sleep.airflow import (
    AirflowResult,
    AirflowSettings,
    HypopneaRule,
    detect_respiratory_events,
)
from healthhut.records.sleep.artefacts import ArtefactSettings, clean_pulse, clean_spo2
from healthhut.records.sleep.oximetry import Desaturation, find_desaturations, odi, summarise
from healthhut.records.sleep.series import FloatArray, NightRecording
from healthhut.records.sleep.severity import Severity, hypoxaemia_grade, severity_for_index

MIN_VALID_HOURS = 4.0


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    hypopnea_rule: HypopneaRule = HypopneaRule.AASM_1A_3PCT
    min_valid_hours: float = MIN_VALID_HOURS     # below this the study is "insufficient recording"
    artefacts: ArtefactSettings = field(default_factory=ArtefactSettings)
    airflow: AirflowSettings = field(default_factory=AirflowSettings)


@dataclass(frozen=True, slots=True)
class NightEvent:
    """One event for the report: apnea, hypopnea or desaturation; times from the recording start."""

    kind: str
    start: datetime
    onset_s: float
    duration_s: float
    spo2_drop: float | None = None
    nadir_spo2: float | None = None
    subtype: str | None = None        # apneas: obstructive / central / mixed / unclassified


@dataclass(frozen=True, slots=True)
class NightMetrics:
    """The screening numbers. `ahi` is the REI (per monitoring hour) when only HSAT channels exist."""

    ahi: float | None
    odi3: float | None
    odi4: float | None
    t90_minutes: float | None
    ct90_percent: float | None
    nadir_spo2: float | None
    mean_spo2: float | None
    longest_apnea_seconds: float | None
    longest_hypopnea_seconds: float | None
    longest_desaturation_seconds: float | None
    apnea_count: int | None
    hypopnea_count: int | None
    desaturation3_count: int | None
    desaturation4_count: int | None
    valid_hours: float
    recorded_hours: float
    oximetry_valid_hours: float
    monitoring_hours: float | None
    pulse_mean: float | None
    pulse_min: float | None
    pulse_max: float | None
    severity: Severity | None
    severity_basis: str | None
    hypoxaemia: Severity | None
    apnea_types: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NightAnalysis:
    start: datetime
    end: datetime
    metrics: NightMetrics
    events: tuple[NightEvent, ...]
    rules: str
    data_quality: str
    insufficient: bool
    spo2: FloatArray | None              # filtered 1 Hz SpO2 (NaN invalid), for plots and SampledData
    pulse: FloatArray | None             # cleaned 1 Hz pulse
    airflow: AirflowResult | None
    desaturations: tuple[Desaturation, ...] = ()
    scored_event_counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Stable keys for `sleep analyze --json`; numbers rounded to what a report shows."""
        m = self.metrics

        def r(value: float | None, digits: int = 1) -> float | None:
            return None if value is None else round(float(value), digits)

        return {
            "ahi": r(m.ahi), "odi3": r(m.odi3), "odi4": r(m.odi4), "t90_minutes": r(m.t90_minutes),
            "ct90_percent": r(m.ct90_percent), "nadir_spo2": r(m.nadir_spo2, 0),
            "mean_spo2": r(m.mean_spo2), "longest_apnea_seconds": r(m.longest_apnea_seconds, 0),
            "longest_hypopnea_seconds": r(m.longest_hypopnea_seconds, 0),
            "longest_desaturation_seconds": r(m.longest_desaturation_seconds, 0),
            "apnea_count": m.apnea_count, "hypopnea_count": m.hypopnea_count,
            "desaturation3_count": m.desaturation3_count, "desaturation4_count": m.desaturation4_count,
            "valid_hours": r(m.valid_hours, 2), "recorded_hours": r(m.recorded_hours, 2),
            "oximetry_valid_hours": r(m.oximetry_valid_hours, 2), "monitoring_hours": r(m.monitoring_hours, 2),
            "pulse_mean": r(m.pulse_mean), "pulse_min": r(m.pulse_min, 0), "pulse_max": r(m.pulse_max, 0),
            "severity": m.severity.value if m.severity else None, "severity_basis": m.severity_basis,
            "hypoxaemia": m.hypoxaemia.value if m.hypoxaemia else None, "apnea_types": dict(m.apnea_types),
            "rules": self.rules, "data_quality": self.data_quality, "insufficient": self.insufficient,
            "start": self.start.isoformat(), "end": self.end.isoformat(),
            "scored_events": dict(self.scored_event_counts),
            "events": [{"kind": e.kind, "start": e.start.isoformat(), "onset_s": round(e.onset_s, 1),
                        "duration_s": round(e.duration_s, 1), "spo2_drop": r(e.spo2_drop),
                        "nadir_spo2": r(e.nadir_spo2, 0), "subtype": e.subtype} for e in self.events],
        }


def _rules_statement(rule: HypopneaRule, has_flow: bool, basis: str | None, has_effort: bool = False) -> str:
    oxi = ("Desaturations: fall of >= 3 (ODI3) and >= 4 (ODI4) points from the max of the 120 s before the "
           "event (re-based after each event), lasting >= 10 s, per hour of valid oximetry; T90 = time < 90 %. "
           "The desaturation baseline is not fixed by AASM (reference serial-and-sleep §4.4).")
    if not has_flow:
        return (f"Oximetry screening, not a diagnosis: no airflow channel, so no AHI/REI. {oxi} "
                f"Severity by {basis} with the AHI bands (<5 normal, 5-<15 mild, 15-<30 moderate, >=30 severe).")
    typing = ("Apneas typed from the effort channel (obstructive: effort >= 20 % of baseline throughout; central: "
              "<= 10 % throughout; mixed: absent, then back), a heuristic." if has_effort else
              "Apneas are not typed (no effort channel).")
    hyp = ("rule 1A (AASM 2012, recommended): >= 3 % desaturation; arousals cannot be scored without EEG"
           if rule is HypopneaRule.AASM_1A_3PCT else
           "rule 1B (AASM 2012, acceptable, the '4 % rule'): >= 4 % desaturation")
    return ("AASM Scoring Manual 2012 (v2.x, unchanged to v3) adult respiratory rules on the airflow channel: "
            f"apnea = >= 90 % drop of flow excursion for >= 10 s; hypopnea = >= 30 % drop for >= 10 s, {hyp}. "
            "Home sleep test without EEG: the index is the REI (events per hour of monitoring time with valid "
            f"flow and oximetry), reported under 'ahi'. {typing} "
            f"{oxi} Severity by {basis} (<5 normal, 5-<15 mild, 15-<30 moderate, >=30 severe).")


def _quality(valid_h: float, recorded_h: float, label: str, insufficient: bool, min_h: float) -> str:
    text = f"{valid_h:.1f} h valid {label} of {recorded_h:.1f} h recorded"
    if insufficient:
        text += f"; insufficient recording (< {min_h:g} h valid)"
    return text


def analyse_night(night: NightRecording, settings: AnalysisSettings | None = None) -> NightAnalysis:
    """Run artefact handling, oximetry and airflow scoring on one night. Pure: no I/O, no plotting."""
    settings = settings or AnalysisSettings()
    if night.spo2 is None and night.airflow is None:
        raise SleepDataError("the recording has neither an SpO2 nor an airflow channel")
    recorded_s = night.recorded_seconds
    f = None
    desat3: list[Desaturation] = []
    desat4: list[Desaturation] = []
    oxi_valid_s = 0
    t90_min = ct90 = nadir = mean = None
    if night.spo2 is not None:
        f = clean_spo2(night.spo2.samples, night.sensor_off, settings.artefacts)
        summary = summarise(f)
        oxi_valid_s = summary.valid_seconds
        t90_min, ct90 = summary.t90_seconds / 60.0, summary.ct90_percent
        nadir, mean = summary.nadir, summary.mean
        desat3 = find_desaturations(f, 3.0)
        desat4 = find_desaturations(f, 4.0)
    pulse = None
    p_mean = p_min = p_max = None
    if night.pulse is not None:
        pulse = clean_pulse(night.pulse.samples, None if f is None else ~np.isnan(f))
        if np.isfinite(pulse).any():
            p_mean, p_min, p_max = (float(np.nanmean(pulse)), float(np.nanmin(pulse)), float(np.nanmax(pulse)))
    odi3 = odi(len(desat3), oxi_valid_s) if f is not None else None
    odi4 = odi(len(desat4), oxi_valid_s) if f is not None else None
    own_desats = desat3 if settings.hypopnea_rule is HypopneaRule.AASM_1A_3PCT else desat4

    flow_result = None
    ahi = monitoring_h = None
    apneas: list[float] = []
    hypopneas: list[float] = []
    events: list[NightEvent] = []
    apnea_types: dict[str, int] = {}
    start = night.start
    if night.airflow is not None:
        flow_result = detect_respiratory_events(night.airflow, f, settings.hypopnea_rule, settings.airflow,
                                                night.effort)
        monitored = flow_result.valid_flow.copy()
        if f is not None:
            n = min(len(monitored), len(f))
            monitored = monitored[:n] & ~np.isnan(f[:n])
        monitoring_s = int(monitored.sum())
        monitoring_h = monitoring_s / 3600.0
        wa = settings.airflow.envelope_window_s
        for e in flow_result.events:
            inside = int(e.onset_s + wa / 2)        # first second of the raw run: inside the event
            if not (0 <= inside < len(monitored) and monitored[inside]):
                # outside monitoring time (flow or oximetry unusable): left out of the count as it is of the
                # denominator, so the REI stays events per monitored hour
                continue
            (apneas if e.kind == "apnea" else hypopneas).append(e.duration_s)
            events.append(NightEvent(e.kind, start + timedelta(seconds=e.onset_s), e.onset_s, e.duration_s,
                                     e.desaturation, subtype=e.subtype if e.kind == "apnea" else None))
            if e.kind == "apnea":
                apnea_types[e.subtype] = apnea_types.get(e.subtype, 0) + 1
        ahi = (len(apneas) + len(hypopneas)) / monitoring_h if monitoring_s > 0 else None
    for d in own_desats:
        events.append(NightEvent("desaturation", start + timedelta(seconds=d.onset), float(d.onset),
                                 float(d.duration_s), d.drop, d.nadir))
    events.sort(key=lambda e: e.onset_s)

    headline: float | None
    if ahi is not None:
        basis: str | None = "REI"
        headline = ahi
    else:
        basis = "ODI3" if settings.hypopnea_rule is HypopneaRule.AASM_1A_3PCT else "ODI4"
        headline = odi3 if basis == "ODI3" else odi4
        if headline is None:
            basis = None
    valid_h = monitoring_h if monitoring_h is not None else oxi_valid_s / 3600.0
    recorded_h = recorded_s / 3600.0
    insufficient = valid_h < settings.min_valid_hours
    metrics = NightMetrics(
        ahi=ahi, odi3=odi3, odi4=odi4, t90_minutes=t90_min, ct90_percent=ct90, nadir_spo2=nadir,
        mean_spo2=mean,
        longest_apnea_seconds=max(apneas) if apneas else (0.0 if flow_result is not None else None),
        longest_hypopnea_seconds=max(hypopneas) if hypopneas else (0.0 if flow_result is not None else None),
        longest_desaturation_seconds=(float(max(d.duration_s for d in own_desats)) if own_desats
                                      else (0.0 if f is not None else None)),
        apnea_count=len(apneas) if flow_result is not None else None,
        hypopnea_count=len(hypopneas) if flow_result is not None else None,
        desaturation3_count=len(desat3) if f is not None else None,
        desaturation4_count=len(desat4) if f is not None else None,
        valid_hours=valid_h, recorded_hours=recorded_h, oximetry_valid_hours=oxi_valid_s / 3600.0,
        monitoring_hours=monitoring_h, pulse_mean=p_mean, pulse_min=p_min, pulse_max=p_max,
        severity=severity_for_index(headline), severity_basis=basis, hypoxaemia=hypoxaemia_grade(nadir),
        apnea_types=apnea_types)
    label = "monitoring time (flow and oximetry)" if monitoring_h is not None else "oximetry"
    counts: dict[str, int] = {}
    for scored in night.scored_events:
        counts[scored.kind] = counts.get(scored.kind, 0) + 1
    return NightAnalysis(
        start=start, end=start + timedelta(seconds=recorded_s), metrics=metrics, events=tuple(events),
        rules=_rules_statement(settings.hypopnea_rule, night.airflow is not None, basis, night.effort is not None),
        data_quality=_quality(valid_h, recorded_h, label, insufficient, settings.min_valid_hours),
        insufficient=insufficient, spo2=f, pulse=pulse, airflow=flow_result,
        desaturations=tuple(own_desats), scored_event_counts=counts)
