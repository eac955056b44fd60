"""A night as FHIR R4B: SampledData night Observation, summary Observations, DiagnosticReport."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation

from healthhut.readings import DeviceIdentity, ReadingKind, Transport
from healthhut.records import fhir_json
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.normalise import NormaliseSettings, observations_for
from healthhut.records.sleep.analysis import analyse_night
from healthhut.records.sleep.fhir import SLEEP_SYSTEM, diagnostic_report, oximetry_series_observations
from healthhut.records.sleep.series import night_from_reading, reading_from_night
from healthhut.records.sleep.synthetic import osa_night, synthetic_night

PATIENT = PatientRef("urn:oid:2.999.1", "1234567")
SETTINGS = NormaliseSettings(site_id="hut-07", builders={ReadingKind.OXIMETRY_SERIES: oximetry_series_observations})
# LOINC codes the reference lists for sleep (ble-and-fhir §4) and the core oximetry codes (§3.2)
ALLOWED_LOINC = {"69990-0", "90567-9", "103209-3", "90562-0", "90561-2", "2708-6", "59408-5", "8867-4"}
DEVICE = DeviceIdentity(transport=Transport.FILE, model="HSAT", serial="A1")


@pytest.fixture(scope="module")
def reading() -> Any:
    spec, _, _ = osa_night(5.0, flow_hz=10.0)
    return reading_from_night(synthetic_night(spec), DEVICE, datetime(2026, 11, 29, 7, 0, tzinfo=UTC))


@pytest.fixture(scope="module")
def drafts(reading: Any) -> list[ObservationDraft]:
    return observations_for(reading, PATIENT, SETTINGS)


@pytest.fixture(scope="module")
def observations(drafts: list[ObservationDraft]) -> list[ObservationDraft]:
    """The night's Observations: every draft but the DiagnosticReport that comes last."""
    assert [d.resource_type for d in drafts].count("DiagnosticReport") == 1
    assert drafts[-1].resource_type == "DiagnosticReport"
    return drafts[:-1]


def by_code(drafts: list[ObservationDraft], system: str, code: str) -> list[dict[str, Any]]:
    return [d.resource for d in drafts
            if any(c["system"] == system and c["code"] == code for c in d.resource["code"]["coding"])]


def test_every_resource_validates_and_round_trips(drafts: list[ObservationDraft]) -> None:
    for draft in drafts:
        model = DiagnosticReport if draft.resource_type == "DiagnosticReport" else Observation
        model.model_validate(fhir_json.loads(draft.json))
        assert fhir_json.loads(draft.json) == fhir_json.loads(fhir_json.dumps(draft.resource))
    assert len({d.local_key for d in drafts}) == len(drafts)
    assert len({d.identifier for d in drafts}) == len(drafts)


def test_night_observation_carries_sampled_spo2_and_pulse(drafts: list[ObservationDraft], reading: Any) -> None:
    night = drafts[0].resource
    assert night["code"]["coding"][0] == {"system": SLEEP_SYSTEM, "code": "oximetry-recording",
                                          "display": "Continuous oximetry recording (SpO2 and pulse)"}
    spo2, pulse = night["component"]
    assert [c["code"] for c in spo2["code"]["coding"]] == ["2708-6", "59408-5", "150456"]
    assert [c["code"] for c in pulse["code"]["coding"]] == ["8867-4", "149530"]
    data = spo2["valueSampledData"]
    assert data["period"] == 1000 and data["dimensions"] == 1 and data["origin"]["code"] == "%"
    assert pulse["valueSampledData"]["origin"]["code"] == "/min"
    values = data["data"].split(" ")
    assert len(values) == 5 * 3600
    assert values[3 * 3600:3 * 3600 + 1800] == ["E"] * 1800       # the finger-out half hour (sentinel 127)
    assert values[0] in {"95", "96", "97"}
    assert night["effectivePeriod"] == {"start": "2026-11-28T22:00:00+00:00", "end": "2026-11-29T03:00:00+00:00"}
    assert all(c["coding"][0]["code"] != "vital-signs" for c in night["category"])


def test_summary_codes_units_and_links(observations: list[ObservationDraft], reading: Any) -> None:
    drafts = observations
    analysis = analyse_night(night_from_reading(reading))
    night = drafts[0]
    (ahi,) = by_code(drafts, "http://loinc.org", "69990-0")
    assert ahi["valueQuantity"]["code"] == "/h"
    assert float(ahi["valueQuantity"]["value"]) == pytest.approx(round(analysis.metrics.ahi or 0, 1))
    odis = by_code(drafts, "http://loinc.org", "90567-9")
    assert sorted(o["method"]["text"][0] for o in odis) == ["3", "4"]
    assert {o["code"]["coding"][1]["code"] for o in odis} == {"odi-3", "odi-4"}
    (mean,) = by_code(drafts, "http://loinc.org", "103209-3")
    assert mean["valueQuantity"]["code"] == "%"
    expected_units = {"nadir-spo2": "%", "t90": "min", "ct90": "%", "longest-apnea": "s", "valid-time": "h",
                      "recording-time": "h"}
    for code, unit in expected_units.items():
        (obs,) = by_code(drafts, SLEEP_SYSTEM, code)
        assert obs["valueQuantity"]["code"] == unit and obs["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    (longest,) = by_code(drafts, SLEEP_SYSTEM, "longest-apnea")
    assert abs(float(longest["valueQuantity"]["value"]) - 70) <= 3
    for draft in drafts[1:]:
        assert draft.resource["derivedFrom"] == [{"type": "Observation", "identifier": {
            "system": "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation",
            "value": night.identifier}}]
        assert all(c["coding"][0]["code"] != "vital-signs" for c in draft.resource["category"])


def test_only_listed_loinc_codes_are_used(drafts: list[ObservationDraft]) -> None:
    text = " ".join(d.json for d in drafts)
    used: set[str] = set()
    for draft in drafts:
        concepts = [draft.resource["code"], *(c["code"] for c in draft.resource.get("component", []))]
        used |= {c["code"] for concept in concepts for c in concept["coding"] if c["system"] == "http://loinc.org"}
    assert used <= ALLOWED_LOINC
    assert "1234567" in text    # the identifier carries the resident, by design (never logged)


def test_held_night_has_no_identifiers_and_links_by_local_key(reading: Any) -> None:
    held = observations_for(reading, None, SETTINGS)
    assert all(d.identifier is None and "subject" not in d.resource for d in held)
    assert held[1].resource["derivedFrom"][0]["identifier"]["value"] == held[0].local_key


def test_diagnostic_report_validates_and_carries_the_plot(observations: list[ObservationDraft],
                                                          reading: Any) -> None:
    drafts = observations
    analysis = analyse_night(night_from_reading(reading))
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    report = diagnostic_report(analysis, drafts, PATIENT, issued=datetime(2026, 11, 29, 8, 0, tzinfo=UTC),
                               png=png)
    model = DiagnosticReport.model_validate(report)
    assert model.status == "final" and len(report["result"]) == len(drafts)
    assert base64.b64decode(report["presentedForm"][0]["data"]) == png
    assert report["presentedForm"][0]["contentType"] == "image/png"
    assert "REI" in report["conclusion"] and "moderate" in report["conclusion"]
    assert "AASM" in report["conclusion"]
    assert report["subject"]["reference"].startswith("urn:uuid:")


def test_oximetry_only_night_has_no_ahi_and_says_screening(reading: Any) -> None:
    spec, _, _ = osa_night(5.0, flow_hz=None)
    oxi = reading_from_night(synthetic_night(spec), DEVICE, datetime(2026, 11, 29, 7, 0, tzinfo=UTC))
    drafts = observations_for(oxi, PATIENT, SETTINGS)
    assert not by_code(drafts, "http://loinc.org", "69990-0")
    assert not by_code(drafts, SLEEP_SYSTEM, "longest-apnea")
    report = diagnostic_report(analyse_night(night_from_reading(oxi)), drafts[:-1], PATIENT)
    DiagnosticReport.model_validate(report)
    assert "not a diagnosis" in report["conclusion"] and "presentedForm" not in report
    assert drafts[-1].resource_type == "DiagnosticReport" and "not a diagnosis" in drafts[-1].resource["conclusion"]


def test_short_night_summaries_are_preliminary_and_integers_have_no_fraction() -> None:
    spec, _, _ = osa_night(1.0, flow_hz=10.0)
    short = reading_from_night(synthetic_night(spec), DEVICE, datetime(2026, 11, 29, 7, 0, tzinfo=UTC))
    drafts = observations_for(short, PATIENT, SETTINGS)
    assert drafts[0].resource["status"] == "final"              # the recording itself is what it is
    assert {d.resource["status"] for d in drafts[1:]} == {"preliminary"}
    (nadir,) = by_code(drafts, SLEEP_SYSTEM, "nadir-spo2")
    assert '"value":' in drafts[0].json and "Insufficient recording" in nadir["note"][-1]["text"]
    nadir_json = next(d.json for d in drafts if d.resource is nadir)
    assert '"valueQuantity":{"value":' in nadir_json and '.0,"unit"' not in nadir_json.split("valueQuantity")[1][:40]


def test_one_minute_live_window_gives_the_sampled_data_observation_only() -> None:
    from datetime import timedelta

    from healthhut.readings import Metric, Reading, SampleSeries, TimeSource, Unit

    start = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    window = Reading(kind=ReadingKind.OXIMETRY_SERIES, device=DEVICE, received_at=start + timedelta(minutes=1),
                     measured_at=start, time_source=TimeSource.RECEIPT,
                     series={Metric.SPO2: SampleSeries(start, timedelta(seconds=1), Unit.PERCENT,
                                                       tuple([97.0] * 50 + [None] * 10)),
                             Metric.PULSE_RATE: SampleSeries(start, timedelta(seconds=1), Unit.PER_MINUTE,
                                                             tuple([72.0] * 60))})
    (only,) = observations_for(window, PATIENT, SETTINGS)
    data = only.resource["component"][0]["valueSampledData"]["data"].split()
    assert data == ["97"] * 50 + ["E"] * 10
    assert only.resource["effectivePeriod"]["end"] == "2026-11-29T09:01:00+00:00"
