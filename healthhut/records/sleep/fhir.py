"""A night as FHIR R4: one Observation with SampledData (SpO2, pulse), summary Observations, a DiagnosticReport.

Codes (reference ble-and-fhir.md §4): AHI 69990-0, ODI 90567-9, mean SpO2 103209-3, apnea index 90562-0 and
hypopnea index 90561-2 are LOINC; 69990-0, 90567-9 and 103209-3 were only seen on LOINC mirrors, so check them
in the LOINC browser before release. Nadir SpO2, T90, longest apnea and recording/valid time have no verified
LOINC code and use the project code system SLEEP_SYSTEM, never a guessed LOINC number. None of the summaries
carries the vital-signs category.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

from healthhut.errors import SleepDataError
from healthhut.readings import Unit
from healthhut.records import codes, identity
from healthhut.records.drafts import PatientRef
from healthhut.records.observations import (
    ObservationBuilder,
    ObservationContext,
    PendingObservation,
    add_note,
    base_observation,
    derived_from,
    quantity_element,
)
from healthhut.records.references import patient_reference
from healthhut.records.sleep.airflow import HypopneaRule
from healthhut.records.sleep.analysis import AnalysisSettings, NightAnalysis, analyse_night
from healthhut.records.sleep.artefacts import VALID_PULSE_RANGE, VALID_SPO2_RANGE, in_range
from healthhut.records.sleep.series import FloatArray, night_from_reading

log = logging.getLogger(__name__)

SLEEP_SYSTEM = f"{codes.PROJECT_BASE}/CodeSystem/sleep"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"

NIGHT = codes.Code(SLEEP_SYSTEM, "oximetry-recording", "Continuous oximetry recording (SpO2 and pulse)")
# Live oximeters deliver one OXIMETRY_SERIES Reading per minute: screening indices over minutes mean nothing, so
# recordings shorter than this get the sampled-data Observation only.
MIN_SUMMARY_SECONDS = 3600
AHI_LOINC = codes.Code(codes.LOINC, "69990-0", "Apnea hypopnea index 24 hour")
APNEA_INDEX_LOINC = codes.Code(codes.LOINC, "90562-0", "Apnea index")
HYPOPNEA_INDEX_LOINC = codes.Code(codes.LOINC, "90561-2", "Hypopnea index")
ODI_LOINC = codes.Code(codes.LOINC, "90567-9", "Oxygen desaturation index")
MEAN_SPO2_LOINC = codes.Code(codes.LOINC, "103209-3", "Mean oxygen saturation")
REI = codes.Code(SLEEP_SYSTEM, "rei", "Respiratory event index (per monitoring hour, no EEG)")
ODI3 = codes.Code(SLEEP_SYSTEM, "odi-3", "Oxygen desaturation index, >= 3 % drops")
ODI4 = codes.Code(SLEEP_SYSTEM, "odi-4", "Oxygen desaturation index, >= 4 % drops")
NADIR = codes.Code(SLEEP_SYSTEM, "nadir-spo2", "Lowest SpO2 of the night (artefact-filtered)")
T90 = codes.Code(SLEEP_SYSTEM, "t90", "Time with SpO2 below 90 %")
CT90 = codes.Code(SLEEP_SYSTEM, "ct90", "Percent of valid oximetry time with SpO2 below 90 %")
LONGEST_APNEA = codes.Code(SLEEP_SYSTEM, "longest-apnea", "Longest apnea duration")
VALID_TIME = codes.Code(SLEEP_SYSTEM, "valid-time", "Valid monitoring time")
RECORDING_TIME = codes.Code(SLEEP_SYSTEM, "recording-time", "Total recording time")
REPORT_CODE = codes.Code(SLEEP_SYSTEM, "sleep-screening-report", "Overnight sleep apnea screening report")


@dataclass(frozen=True, slots=True)
class _Summary:
    key: str                       # type token for the local key / identifier
    concept: dict[str, Any]
    value: float | None
    unit: str
    digits: int
    note: str | None = None


def sampled_data_text(samples: FloatArray, low: float, high: float) -> str:
    """SampledData.data: whole values separated by spaces, "E" for invalid/out-of-range samples."""
    clean = in_range(samples, low, high)
    as_text = np.where(np.isnan(clean), "E", np.char.mod("%g", np.nan_to_num(clean)))
    return " ".join(as_text.tolist())


def _sampled(samples: FloatArray, unit: str, low: float, high: float) -> dict[str, Any]:
    return {"origin": quantity_element(Decimal(0), unit), "period": 1000, "dimensions": 1,
            "data": sampled_data_text(samples, low, high)}


def _summaries(analysis: NightAnalysis, rule: HypopneaRule) -> list[_Summary]:
    m = analysis.metrics
    rule_note = ("hypopnea rule 1A (>= 3 % desaturation)" if rule is HypopneaRule.AASM_1A_3PCT
                 else "hypopnea rule 1B (>= 4 % desaturation)")
    out: list[_Summary] = []
    if m.ahi is not None:
        out += [
            _Summary("ahi", codes.concept(AHI_LOINC, REI), m.ahi, Unit.PER_HOUR, 1,
                     f"Home sleep test without EEG: REI = apneas + hypopneas per hour of monitoring time; "
                     f"AASM 2012 {rule_note}."),
            _Summary("apnea-index", APNEA_INDEX_LOINC.concept(),
                     (m.apnea_count or 0) / m.valid_hours if m.valid_hours else None, Unit.PER_HOUR, 1),
            _Summary("hypopnea-index", HYPOPNEA_INDEX_LOINC.concept(),
                     (m.hypopnea_count or 0) / m.valid_hours if m.valid_hours else None, Unit.PER_HOUR, 1),
            _Summary("longest-apnea", LONGEST_APNEA.concept(), m.longest_apnea_seconds, Unit.SECOND, 0),
        ]
    odi_note = "Desaturation of >= {} percentage points from the 120-s pre-event baseline, lasting >= 10 s."
    out += [
        _Summary("odi-3", codes.concept(ODI_LOINC, ODI3), m.odi3, Unit.PER_HOUR, 1, odi_note.format(3)),
        _Summary("odi-4", codes.concept(ODI_LOINC, ODI4), m.odi4, Unit.PER_HOUR, 1, odi_note.format(4)),
        _Summary("mean-spo2", MEAN_SPO2_LOINC.concept(), m.mean_spo2, Unit.PERCENT, 1),
        _Summary("nadir-spo2", NADIR.concept(), m.nadir_spo2, Unit.PERCENT, 0),
        _Summary("t90", T90.concept(), m.t90_minutes, Unit.MINUTE, 1),
        _Summary("ct90", CT90.concept(), m.ct90_percent, Unit.PERCENT, 1),
        _Summary("valid-time", VALID_TIME.concept(), m.valid_hours, Unit.HOUR, 2, analysis.data_quality),
        _Summary("recording-time", RECORDING_TIME.concept(), m.recorded_hours, Unit.HOUR, 2),
    ]
    return [s for s in out if s.value is not None]


def _drop_profiles(resource: dict[str, Any]) -> None:
    """No profile claims: none of the PHD or vital-signs profiles fits a night or its indices."""
    meta = resource.get("meta", {})
    meta.pop("profile", None)
    if not meta:
        resource.pop("meta", None)


def _period(ctx: ObservationContext, analysis: NightAnalysis) -> dict[str, str]:
    start = ctx.reading.effective_at
    return {"start": start.isoformat(), "end": (start + (analysis.end - analysis.start)).isoformat()}


def night_observations(ctx: ObservationContext, analysis: NightAnalysis,
                       rule: HypopneaRule = HypopneaRule.AASM_1A_3PCT) -> list[PendingObservation]:
    """The night Observation (SampledData) first, then one summary Observation per metric, derivedFrom it.

    Recordings shorter than MIN_SUMMARY_SECONDS (live one-minute windows) give the first one only.
    """
    night = night_from_reading(ctx.reading)
    resource, key, identifier = base_observation(ctx, NIGHT.concept(), NIGHT.code, [], vital_signs=False)
    _drop_profiles(resource)
    resource.pop("effectiveDateTime")
    period = _period(ctx, analysis)
    resource["effectivePeriod"] = period
    components: list[dict[str, Any]] = []
    if night.spo2 is not None:
        components.append({"code": codes.concept(codes.SPO2_LOINC, codes.SPO2_PULSE_OX_LOINC, codes.SPO2_MDC),
                           "valueSampledData": _sampled(night.spo2.samples, Unit.PERCENT, *VALID_SPO2_RANGE)})
    if night.pulse is not None:
        components.append({"code": codes.concept(codes.HEART_RATE_LOINC, codes.PULSE_OXIM_MDC),
                           "valueSampledData": _sampled(night.pulse.samples, Unit.PER_MINUTE,
                                                        *VALID_PULSE_RANGE)})
    resource["component"] = components
    add_note(resource, analysis.data_quality)
    night_obs = PendingObservation(resource, key, identifier, NIGHT.code, None, None)
    out = [night_obs]
    if (analysis.end - analysis.start).total_seconds() < MIN_SUMMARY_SECONDS:
        return out
    for summary in _summaries(analysis, rule):
        res, k, ident = base_observation(ctx, summary.concept, summary.key, [], vital_signs=False)
        _drop_profiles(res)
        res.pop("effectiveDateTime")
        res["effectivePeriod"] = period
        value = Decimal(repr(float(summary.value or 0.0))).quantize(Decimal(1).scaleb(-summary.digits))
        res["valueQuantity"] = quantity_element(value, summary.unit)
        if summary.note:
            add_note(res, summary.note)
        if analysis.insufficient:
            # a short or mostly invalid recording: the numbers are shown, but not as a final result
            res["status"] = "preliminary"
            add_note(res, "Insufficient recording: " + analysis.data_quality)
        if summary.key.startswith("odi"):
            res["method"] = {"text": f"{summary.key[-1]} % desaturation rule (reference algorithm §4.4)"}
        res["derivedFrom"] = [derived_from(night_obs.identifier, night_obs.local_key)]
        out.append(PendingObservation(res, k, ident, summary.concept["coding"][0]["code"], None, None))
    return out


def report_record(ctx: ObservationContext, analysis: NightAnalysis, observations: list[PendingObservation], *,
                  png: bytes | None = None) -> PendingObservation:
    """The night's DiagnosticReport as a record the store keeps and the outbox sends like an Observation.

    Its identifier (conditional-create key) is `identity.report_identifier` (device, resident, report code,
    the device's start time); held (no resident) it has none, and its `result` points at local keys until the
    night is rebuilt for the resident. `issued` is the reading's receipt time, so a rebuild gives the same text.
    """
    reading = ctx.reading
    identifier = None
    if ctx.patient is not None:
        identifier = identity.report_identifier_element(reading, ctx.patient, REPORT_CODE.code)
    report = diagnostic_report(analysis, observations, ctx.patient, effective_start=reading.effective_at,
                               issued=reading.received_at, png=png, identifier=identifier)
    return PendingObservation(report, identity.local_key(reading, REPORT_CODE.code),
                              None if identifier is None else identifier["value"], REPORT_CODE.code, None, None)


def _plot_or_none(analysis: NightAnalysis) -> bytes | None:
    """The night's PNG when matplotlib is installed; the record is stored without it otherwise."""
    from healthhut.records.sleep.plot import render_night_png

    try:
        return render_night_png(analysis)
    except SleepDataError:  # matplotlib absent: an optional extra
        return None
    except Exception as exc:  # a plot is an illustration: a failure to draw it must never lose the night
        log.warning("night plot not rendered: %s", type(exc).__name__)
        return None


def night_builder(settings: AnalysisSettings | None = None, *, analysis: NightAnalysis | None = None,
                  png: bytes | None = None, plot: bool = True) -> ObservationBuilder:
    """A normaliser builder for OXIMETRY_SERIES: the night Observation, its summaries and, for recordings of
    MIN_SUMMARY_SECONDS or more, the DiagnosticReport grouping them (last), all stored in one transaction.

    `analysis`: an analysis already made of exactly the reading this builder will be given (spares running it
    twice; use such a builder for that one reading only). `png`: the plot to attach; without it the plot is
    rendered when `plot` is true and matplotlib is installed.
    """
    chosen = settings or AnalysisSettings()

    def build(ctx: ObservationContext) -> list[PendingObservation]:
        night_analysis = analysis or analyse_night(night_from_reading(ctx.reading), chosen)
        observations = night_observations(ctx, night_analysis, chosen.hypopnea_rule)
        if (night_analysis.end - night_analysis.start).total_seconds() < MIN_SUMMARY_SECONDS:
            return observations
        image = png if png is not None else (_plot_or_none(night_analysis) if plot else None)
        return [*observations, report_record(ctx, night_analysis, observations, png=image)]

    return build


def oximetry_series_observations(ctx: ObservationContext) -> list[PendingObservation]:
    """Normaliser builder for ReadingKind.OXIMETRY_SERIES (default analysis settings: AASM 1A, 3 %; the plot
    is attached to the report when matplotlib is installed)."""
    return night_builder()(ctx)


def _conclusion(analysis: NightAnalysis) -> str:
    m = analysis.metrics
    parts: list[str] = []
    if m.ahi is not None:
        parts.append(f"REI {m.ahi:.1f}/h ({m.apnea_count} apneas, {m.hypopnea_count} hypopneas; longest apnea "
                     f"{m.longest_apnea_seconds:.0f} s)")
        typed = {k: v for k, v in m.apnea_types.items() if k != "unclassified"}
        if typed:
            parts.append("apnea types: " + ", ".join(f"{v} {k}" for k, v in sorted(typed.items())))
    if m.odi3 is not None:
        parts.append(f"ODI3 {m.odi3:.1f}/h, ODI4 {(m.odi4 or 0):.1f}/h, nadir SpO2 {m.nadir_spo2:.0f} %, "
                     f"mean {m.mean_spo2:.1f} %, T90 {m.t90_minutes:.1f} min")
    if m.severity is not None:
        parts.append(f"severity by {m.severity_basis}: {m.severity.value}")
    if analysis.insufficient:
        parts.append("INSUFFICIENT RECORDING, repeat the study")
    if m.ahi is None:
        parts.append("oximetry screening, not a diagnosis")
    parts.append(analysis.data_quality)
    return "; ".join(parts) + "."


def diagnostic_report(analysis: NightAnalysis, observations: list[PendingObservation] | list[Any],
                      patient: PatientRef | None, *, effective_start: datetime | None = None,
                      issued: datetime | None = None, png: bytes | None = None,
                      identifier: dict[str, str] | None = None) -> dict[str, Any]:
    """A DiagnosticReport grouping the night's Observations, with a conclusion and, when given, the PNG plot
    as presentedForm.

    `result` references the Observations by identifier (logical references, like the summaries' derivedFrom),
    not by urn: the sync side may split a reading's records across bundles, and a logical reference needs no
    entry in the same Bundle.
    """
    start = effective_start or analysis.start
    end = start + (analysis.end - analysis.start)
    report: dict[str, Any] = {"resourceType": "DiagnosticReport"}
    if identifier is not None:
        report["identifier"] = [identifier]
    report |= {
        "status": "preliminary" if analysis.insufficient else "final",
        "category": [codes.Code(DIAGNOSTIC_SERVICE, "PF", "Pulmonary function").concept()],
        "code": REPORT_CODE.concept(),
    }
    if patient is not None:
        report["subject"] = {"reference": patient_reference(patient)}
    report["effectivePeriod"] = {"start": start.isoformat(), "end": end.isoformat()}
    if issued is not None:
        report["issued"] = issued.isoformat()
    report["result"] = [derived_from(o.identifier, o.local_key) for o in observations]
    report["conclusion"] = _conclusion(analysis) + " Rules: " + analysis.rules
    if png is not None:
        report["presentedForm"] = [{"contentType": "image/png", "title": "Overnight SpO2, pulse and airflow",
                                    "data": base64.b64encode(png).decode("ascii")}]
    return report


def validate_report(report: dict[str, Any]) -> None:
    """Validate with the R4B DiagnosticReport model (the normaliser does this for stored reports)."""
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    DiagnosticReport.model_validate(report)

