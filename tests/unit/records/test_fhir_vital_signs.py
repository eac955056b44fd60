"""Reading -> FHIR Observations for the reference vectors BPM-1..5, SPOT-1..4, TEMP-1..3, WS-1..4 (hand-built)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from healthhut.errors import ReadingError
from healthhut.readings import (
    AbsentReason,
    DeviceIdentity,
    Metric,
    Quantity,
    Reading,
    ReadingKind,
    StatusFlag,
    TimeSource,
    Transport,
    Unit,
)
from healthhut.records import fhir_json
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.normalise import NormaliseSettings, observations_for

CST = timezone(timedelta(hours=8))
DEVICE_TIME = datetime(2024, 6, 23, 14, 35, 10, tzinfo=CST)
RECEIVED = datetime(2024, 6, 23, 14, 36, 2, 120000, tzinfo=CST)
PATIENT = PatientRef("urn:oid:2.999.1", "1234567")
SETTINGS = NormaliseSettings(site_id="hut-07")
BPM = DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74", system_id="001C05FFFEFFE874", model="UA-651BLE")
OXIMETER = DeviceIdentity(Transport.BLE, address="A4:C1:38:00:11:22", model="Nonin 3230")
THERMOMETER = DeviceIdentity(Transport.BLE, address="C0:FF:EE:00:00:01", system_id="C0FFEEFFFE000001")
SCALE = DeviceIdentity(Transport.BLE, address="C0:FF:EE:00:00:02")

LOINC, MDC, UCUM = "http://loinc.org", "urn:iso:std:iso:11073:10101", "http://unitsofmeasure.org"
DAR = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
POCD = "http://hl7.org/fhir/uv/pocd/CodeSystem/measurement-status"


def q(value: str | int, unit: Unit) -> Quantity:
    return Quantity.of(value, unit)


def nan(unit: Unit) -> Quantity:
    return Quantity.missing(AbsentReason.NOT_A_NUMBER, unit)


def reading(kind: ReadingKind, device: DeviceIdentity, values: dict[Metric, Quantity], *,
            timed: bool = True, **kw: Any) -> Reading:
    if timed and "time_source" not in kw:
        kw.update(measured_at=DEVICE_TIME, time_source=TimeSource.DEVICE)
    elif "time_source" not in kw:
        kw.update(measured_at=RECEIVED, time_source=TimeSource.RECEIPT)
    return Reading(kind=kind, device=device, received_at=RECEIVED, values=values, **kw)


def normalise(r: Reading, patient: PatientRef | None = PATIENT) -> list[ObservationDraft]:
    drafts = observations_for(r, patient, SETTINGS)
    for draft in drafts:
        check_invariants(draft)
    return drafts


def check_invariants(draft: ObservationDraft) -> None:
    """What fhir.resources does not enforce (obs-6, vs-2/vs-3) plus R4B validation, done again here."""
    from fhir.resources.R4B.observation import Observation

    Observation.model_validate(draft.resource)
    res = draft.resource
    assert not ("valueQuantity" in res and "dataAbsentReason" in res)
    for component in res.get("component", []):
        assert not ("valueQuantity" in component and "dataAbsentReason" in component)
    if any(c["coding"][0]["code"] == "vital-signs" for c in res["category"]):
        assert "valueQuantity" in res or "dataAbsentReason" in res or "component" in res
        assert any(c["system"] == LOINC for c in res["code"]["coding"])
    assert fhir_json.loads(draft.json) == res
    assert json.loads(draft.json, parse_float=Decimal) == res
    assert "effectiveDateTime" in res and "issued" in res


def by_mdc(drafts: list[ObservationDraft]) -> dict[str | None, ObservationDraft]:
    return {d.mdc_code: d for d in drafts}


def codings(concept: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in concept["coding"]]


def component(res: dict[str, Any], code: str) -> dict[str, Any]:
    matches = [c for c in res["component"] if any(x["code"] == code for x in c["code"]["coding"])]
    assert len(matches) == 1
    return matches[0]


def flag(element: dict[str, Any]) -> str | None:
    for concept in element.get("interpretation", []):
        for coding in concept["coding"]:
            if coding["system"] == V3:
                return str(coding["code"])
    return None


def absent(element: dict[str, Any]) -> str:
    return str(element["dataAbsentReason"]["coding"][0]["code"])


# --- blood pressure ---------------------------------------------------------------------------------------


def bpm1() -> Reading:
    return reading(ReadingKind.BLOOD_PRESSURE, BPM, {
        Metric.SYSTOLIC: q(120, Unit.MMHG), Metric.DIASTOLIC: q(80, Unit.MMHG),
        Metric.MEAN_ARTERIAL: q(93, Unit.MMHG), Metric.PULSE_RATE: q(72, Unit.PER_MINUTE)})


def test_bpm1_panel_codes_components_and_identifier() -> None:
    drafts = by_mdc(normalise(bpm1()))
    assert set(drafts) == {"150020", "149546"}
    panel = drafts["150020"]
    res = panel.resource
    assert panel.code == "85354-9"
    assert codings(res["code"]) == [(LOINC, "85354-9"), (MDC, "150020")]
    assert codings(component(res, "150021")["code"]) == [(LOINC, "8480-6"), (MDC, "150021")]
    assert codings(component(res, "150022")["code"]) == [(LOINC, "8462-4"), (MDC, "150022")]
    assert codings(component(res, "150023")["code"]) == [(MDC, "150023"), (LOINC, "8478-0")]
    systolic = component(res, "150021")["valueQuantity"]
    assert systolic == {"value": Decimal(120), "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}
    assert "valueQuantity" not in res and "interpretation" not in res
    assert res["meta"]["profile"][0] == "http://hl7.org/fhir/StructureDefinition/bp"
    assert [c["coding"][0]["code"] for c in res["category"]] == ["vital-signs", "phd"]
    assert res["effectiveDateTime"] == "2024-06-23T14:35:10+08:00"
    assert res["issued"].startswith("2024-06-23T14:36:02.12")
    assert res["status"] == "final"
    assert res["subject"]["reference"].startswith("urn:uuid:")
    assert res["device"]["reference"].startswith("urn:uuid:")
    assert res["extension"][0]["url"] == "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"
    # the §3.7 example, byte for byte
    assert panel.identifier == "001C05FFFEFFE874-1234567-urn:oid:2.999.1-150020-772468510"
    assert res["identifier"] == [{"system": "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation",
                                  "value": panel.identifier}]
    assert panel.local_key == "001C05FFFEFFE874-150020-772468510"
    assert panel.interpretation == "N"
    pulse = drafts["149546"]
    assert pulse.identifier == "001C05FFFEFFE874-1234567-urn:oid:2.999.1-149546-772468510"
    assert codings(pulse.resource["code"]) == [(LOINC, "8867-4"), (MDC, "149546")]
    assert pulse.resource["valueQuantity"]["code"] == "/min"
    assert pulse.resource["meta"]["profile"][0] == "http://hl7.org/fhir/StructureDefinition/heartrate"


def test_bpm2_kpa_converted_to_mmhg_keeping_kpa_and_status_observation() -> None:
    r = reading(ReadingKind.BLOOD_PRESSURE, BPM, {
        Metric.SYSTOLIC: q("16.0", Unit.KPA), Metric.DIASTOLIC: q("10.7", Unit.KPA),
        Metric.MEAN_ARTERIAL: q("12.5", Unit.KPA)}, timed=False, patient_hint="2",
        status=frozenset({StatusFlag.CUFF_TOO_LOOSE, StatusFlag.IRREGULAR_PULSE}))
    drafts = by_mdc(normalise(r))
    assert set(drafts) == {"150020", "8410608"}       # no pulse field -> no heart rate Observation
    panel = drafts["150020"].resource
    for code, mmhg, kpa in (("150021", "120.0", "16.0"), ("150022", "80.3", "10.7"), ("150023", "93.8", "12.5")):
        comp = component(panel, code)
        assert comp["valueQuantity"]["code"] == "mm[Hg]"
        assert str(comp["valueQuantity"]["value"]) == mmhg
        original = comp["extension"][0]["valueQuantity"]
        assert (str(original["value"]), original["code"]) == (kpa, "kPa")
    assert '"value":120.0,' in drafts["150020"].json
    status = drafts["8410608"]
    res = status.resource
    assert res["meta"]["profile"] == ["http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBitsEnumerationObservation"]
    assert [c["coding"][0]["code"] for c in res["category"]] == ["phd"]
    assert "valueQuantity" not in res
    bits = {c["code"]["coding"][0]["code"]: c for c in res["component"]}
    assert set(bits) == {"8410608.1", "8410608.2"}
    assert bits["8410608.2"]["code"]["coding"][0]["system"] == "http://hl7.org/fhir/uv/phd/CodeSystem/ASN1ToHL7"
    assert bits["8410608.2"]["valueCodeableConcept"]["coding"][0]["code"] == "Y"
    assert res["derivedFrom"][0]["identifier"]["value"] == drafts["150020"].identifier
    assert status.interpretation is None
    assert "irregular pulse" in panel["note"][0]["text"]


def test_bpm3_all_nan_gives_absent_components_and_pulse() -> None:
    r = reading(ReadingKind.BLOOD_PRESSURE, BPM, {
        Metric.SYSTOLIC: nan(Unit.MMHG), Metric.DIASTOLIC: nan(Unit.MMHG),
        Metric.MEAN_ARTERIAL: nan(Unit.MMHG), Metric.PULSE_RATE: nan(Unit.PER_MINUTE)})
    drafts = by_mdc(normalise(r))
    assert set(drafts) == {"150020", "149546"}      # status 0x0000: no status Observation
    panel = drafts["150020"]
    for code in ("150021", "150022", "150023"):
        comp = component(panel.resource, code)
        assert absent(comp) == "not-a-number" and "valueQuantity" not in comp
        assert comp["dataAbsentReason"]["coding"][0]["system"] == DAR
    assert panel.interpretation is None
    assert absent(drafts["149546"].resource) == "not-a-number"
    assert drafts["149546"].interpretation is None


def bpm4(**kw: Any) -> Reading:
    return reading(ReadingKind.BLOOD_PRESSURE, BPM, {
        Metric.SYSTOLIC: q(145, Unit.MMHG), Metric.DIASTOLIC: q(95, Unit.MMHG),
        Metric.MEAN_ARTERIAL: q(112, Unit.MMHG), Metric.PULSE_RATE: q(131, Unit.PER_MINUTE)},
        time_source=TimeSource.UNKNOWN, patient_hint=None,
        status=frozenset({StatusFlag.BODY_MOVEMENT, StatusFlag.PULSE_ABOVE_RANGE, StatusFlag.IMPROPER_POSITION}),
        **kw)


def test_bpm4_unknown_time_flags_and_status_bits() -> None:
    drafts = by_mdc(normalise(bpm4(sequence=17)))
    panel = drafts["150020"]
    assert flag(component(panel.resource, "150021")) == "H"
    assert flag(component(panel.resource, "150022")) == "H"
    assert panel.interpretation == "H"
    assert drafts["149546"].interpretation == "HH"
    assert flag(drafts["149546"].resource) == "HH"
    # time unknown -> effective = received, said in an extension and a note
    assert panel.resource["effectiveDateTime"] == RECEIVED.isoformat()
    assert panel.effective_at == RECEIVED
    ext = {e["url"]: e for e in panel.resource["extension"]}
    assert ext["https://healthhut.example/fhir/StructureDefinition/time-quality"]["valueCode"] == "unknown"
    assert any("uncertain" in n["text"] for n in panel.resource["note"])
    assert panel.identifier is not None and panel.identifier.endswith("-150020-seq17")
    bits = {c["code"]["coding"][0]["code"] for c in drafts["8410608"].resource["component"]}
    assert bits == {"8410608.0", "8410608.3", "8410608.5"}


def test_bpm4_without_sequence_uses_receive_seconds() -> None:
    draft = by_mdc(normalise(bpm4()))["150020"]
    received_utc_seconds = int((RECEIVED - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds())
    assert draft.local_key == f"001C05FFFEFFE874-150020-{received_utc_seconds}.12"


def test_bpm5_nan_mean_and_fractional_pulse() -> None:
    r = reading(ReadingKind.BLOOD_PRESSURE, BPM, {
        Metric.SYSTOLIC: q(118, Unit.MMHG), Metric.DIASTOLIC: q(76, Unit.MMHG),
        Metric.MEAN_ARTERIAL: nan(Unit.MMHG), Metric.PULSE_RATE: q("72.5", Unit.PER_MINUTE)}, timed=False)
    drafts = by_mdc(normalise(r))
    assert absent(component(drafts["150020"].resource, "150023")) == "not-a-number"
    assert "valueQuantity" in component(drafts["150020"].resource, "150021")
    assert '"value":72.5,' in drafts["149546"].json


@pytest.mark.parametrize(("systolic", "diastolic", "expected"), [
    (139, 89, ("N", "N")), (140, 89, ("H", "N")), (139, 90, ("N", "H")), (179, 109, ("H", "H")),
    (180, 109, ("HH", "H")), (150, 110, ("H", "HH")), (119, 79, ("N", "N")), (90, 60, ("N", "N")),
    (89, 59, ("L", "L")), (80, 50, ("L", "L")), (79, 49, ("LL", "LL")), (165, 85, ("H", "N")),
])
def test_bp_interpretation_band_edges(systolic: int, diastolic: int, expected: tuple[str, str]) -> None:
    r = reading(ReadingKind.BLOOD_PRESSURE, BPM, {
        Metric.SYSTOLIC: q(systolic, Unit.MMHG), Metric.DIASTOLIC: q(diastolic, Unit.MMHG)})
    (panel,) = normalise(r)
    got = (flag(component(panel.resource, "150021")), flag(component(panel.resource, "150022")))
    assert got == expected
    severity = {"N": 0, "L": 1, "H": 1, "LL": 2, "HH": 2}
    assert panel.interpretation == max(expected, key=lambda f: severity[f])


@pytest.mark.parametrize("values", [
    {Metric.SYSTOLIC: q(400, Unit.MMHG), Metric.DIASTOLIC: q(80, Unit.MMHG)},
    {Metric.SYSTOLIC: q(120, Unit.MMHG), Metric.DIASTOLIC: q(130, Unit.MMHG)},
    {Metric.SYSTOLIC: q("45.0", Unit.KPA), Metric.DIASTOLIC: q("10.0", Unit.KPA)},
    {Metric.SYSTOLIC: q(120, Unit.MMHG), Metric.DIASTOLIC: q(80, Unit.MMHG),
     Metric.PULSE_RATE: q(900, Unit.PER_MINUTE)},
    {Metric.SYSTOLIC: q(120, Unit.PERCENT), Metric.DIASTOLIC: q(80, Unit.MMHG)},
])
def test_impossible_bp_is_rejected_without_naming_the_value(values: dict[Metric, Quantity]) -> None:
    r = reading(ReadingKind.BLOOD_PRESSURE, BPM, values)
    with pytest.raises(ReadingError) as info:
        observations_for(r, PATIENT, SETTINGS)
    message = str(info.value)
    assert not any(ch.isdigit() for ch in message)


def test_corrected_time_shifts_effective_but_not_the_identifier() -> None:
    plain = by_mdc(normalise(bpm1()))["150020"]
    skewed = Reading(**{**_fields(bpm1()), "clock_skew": timedelta(minutes=-7)})
    corrected = by_mdc(normalise(skewed))["150020"]
    assert corrected.identifier == plain.identifier
    assert corrected.resource["effectiveDateTime"] == "2024-06-23T14:28:10+08:00"
    ext = {e["url"]: e["valueCode"] for e in corrected.resource["extension"] if "valueCode" in e}
    assert ext == {"https://healthhut.example/fhir/StructureDefinition/time-quality": "corrected"}
    assert "420 s ahead of the gateway clock" in corrected.resource["note"][0]["text"]
    assert not any("valueCode" in e for e in plain.resource["extension"])


def _fields(r: Reading) -> dict[str, Any]:
    return {name: getattr(r, name) for name in Reading.__slots__}  # type: ignore[attr-defined]


def test_same_reading_same_identifier_other_patient_other_identifier_held_has_none() -> None:
    first = normalise(bpm1())
    again = Reading(**{**_fields(bpm1()), "received_at": RECEIVED + timedelta(days=3)})  # re-downloaded later
    assert [d.identifier for d in normalise(again)] == [d.identifier for d in first]
    assert [d.json for d in normalise(bpm1())] == [d.json for d in first]
    other = normalise(bpm1(), PatientRef("urn:oid:2.999.1", "7654321"))
    assert {d.identifier for d in other}.isdisjoint({d.identifier for d in first})
    assert other[0].resource["subject"] != first[0].resource["subject"]
    held = normalise(bpm1(), None)
    assert [d.local_key for d in held] == [d.local_key for d in first]
    for draft in held:
        assert draft.identifier is None
        assert "subject" not in draft.resource and "identifier" not in draft.resource


def test_held_status_observation_points_at_the_panel_local_key() -> None:
    r = Reading(**{**_fields(bpm1()), "status": frozenset({StatusFlag.BODY_MOVEMENT})})
    drafts = by_mdc(normalise(r, None))
    ref = drafts["8410608"].resource["derivedFrom"][0]["identifier"]
    assert ref == {"system": "https://healthhut.example/fhir/sid/local-observation-key",
                   "value": drafts["150020"].local_key}


def test_each_observation_is_validated_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """One R4B validation per Observation, of the very text the store will keep: the full model for a shape not
    seen before, then (same shape, new values) the shape validator's leaf checks without the full model."""
    from fhir.resources.R4B.observation import Observation

    settings = NormaliseSettings(site_id="hut-07")  # its own validator: no shape known yet
    full: list[Any] = []
    checked: list[str] = []
    from_dict, from_json, shape_validate = (Observation.model_validate, Observation.model_validate_json,
                                            settings.validator.validate)

    def counting_dict(obj: Any, *args: Any, **kwargs: Any) -> Any:
        full.append(obj)
        return from_dict(obj, *args, **kwargs)

    def counting_json(text: Any, *args: Any, **kwargs: Any) -> Any:
        full.append(text)
        return from_json(text, *args, **kwargs)

    def counting_shape(text: str) -> None:
        checked.append(text)
        shape_validate(text)

    monkeypatch.setattr(Observation, "model_validate", counting_dict)
    monkeypatch.setattr(Observation, "model_validate_json", counting_json)
    monkeypatch.setattr(settings.validator, "validate", counting_shape)
    drafts = observations_for(bpm4(), PATIENT, settings)
    assert len(drafts) == 3
    assert full == checked == [draft.json for draft in drafts]

    full.clear(), checked.clear()
    other_values = reading(ReadingKind.BLOOD_PRESSURE, BPM, {
        Metric.SYSTOLIC: q(151, Unit.MMHG), Metric.DIASTOLIC: q(97, Unit.MMHG),
        Metric.MEAN_ARTERIAL: q(115, Unit.MMHG), Metric.PULSE_RATE: q(128, Unit.PER_MINUTE)},
        time_source=TimeSource.UNKNOWN, patient_hint=None,
        status=frozenset({StatusFlag.BODY_MOVEMENT, StatusFlag.PULSE_ABOVE_RANGE, StatusFlag.IMPROPER_POSITION}))
    later = observations_for(other_values, PATIENT, settings)
    assert [d.json for d in later] != [d.json for d in drafts]
    assert checked == [draft.json for draft in later]
    assert full == []


# --- SpO2 -------------------------------------------------------------------------------------------------


def spot(spo2: Quantity, pulse: Quantity, **kw: Any) -> Reading:
    return reading(ReadingKind.SPO2, OXIMETER, {Metric.SPO2: spo2, Metric.PULSE_RATE: pulse}, **kw)


def test_spot1_codes_units_modality_and_identifier_suffix() -> None:
    drafts = by_mdc(normalise(spot(q(97, Unit.PERCENT), q(72, Unit.PER_MINUTE), timed=False)))
    assert set(drafts) == {"150456", "149530"}
    spo2 = drafts["150456"]
    assert codings(spo2.resource["code"]) == [(LOINC, "2708-6"), (LOINC, "59408-5"), (MDC, "150456")]
    assert spo2.code == "2708-6"
    assert spo2.resource["valueQuantity"] == {"value": Decimal(97), "unit": "%", "system": UCUM, "code": "%"}
    assert spo2.resource["meta"]["profile"][0] == "http://hl7.org/fhir/StructureDefinition/oxygensat"
    modality = spo2.resource["component"][0]
    assert codings(modality["code"]) == [(MDC, "68193")]
    assert codings(modality["valueCodeableConcept"]) == [(MDC, "150588")]
    assert spo2.identifier is not None and spo2.identifier.startswith("A4C138001122-1234567-urn:oid:2.999.1-150456-")
    assert spo2.identifier.endswith("-150588")
    pulse = drafts["149530"]
    assert codings(pulse.resource["code"]) == [(LOINC, "8867-4"), (MDC, "149530")]
    assert codings(pulse.resource["component"][0]["valueCodeableConcept"]) == [(MDC, "150588")]
    assert spo2.interpretation == "N" and pulse.interpretation == "N"


def test_spot2_stored_validated_record_is_final() -> None:
    r = spot(q(95, Unit.PERCENT), q(64, Unit.PER_MINUTE), sequence=None,
             status=frozenset({StatusFlag.VALIDATED, StatusFlag.FROM_STORAGE}))
    drafts = by_mdc(normalise(r))
    assert set(drafts) == {"150456", "149530"}
    assert drafts["150456"].resource["status"] == "final"
    assert drafts["150456"].identifier == "A4C138001122-1234567-urn:oid:2.999.1-150456-772468510-150588"


def test_spot3_nan_low_perfusion_clock_not_set() -> None:
    r = spot(nan(Unit.PERCENT), nan(Unit.PER_MINUTE), time_source=TimeSource.UNKNOWN,
             status=frozenset({StatusFlag.LOW_PERFUSION, StatusFlag.CLOCK_NOT_SET}))
    drafts = by_mdc(normalise(r))
    assert set(drafts) == {"150456", "149530", "150604"}
    assert absent(drafts["150456"].resource) == "not-a-number"
    assert absent(drafts["149530"].resource) == "not-a-number"
    bits = drafts["150604"].resource
    assert [c["code"]["coding"][0]["code"] for c in bits["component"]] == ["150604.10"]
    assert bits["component"][0]["code"]["text"] == "signal-low-perfusion"
    assert bits["derivedFrom"][0]["identifier"]["value"] == drafts["150456"].identifier
    ext = {e["url"]: e for e in bits["extension"]}
    assert ext["https://healthhut.example/fhir/StructureDefinition/time-quality"]["valueCode"] == "unknown"


def test_spot4_night_record_low_spo2_high_pulse() -> None:
    night = datetime(2024, 6, 24, 3, 12, 0, tzinfo=CST)
    r = spot(q(89, Unit.PERCENT), q(101, Unit.PER_MINUTE), measured_at=night, time_source=TimeSource.DEVICE,
             status=frozenset({StatusFlag.VALIDATED, StatusFlag.FROM_STORAGE}))
    drafts = by_mdc(normalise(r))
    assert drafts["150456"].interpretation == "LL"
    assert drafts["149530"].interpretation == "H"
    assert drafts["150456"].resource["effectiveDateTime"] == "2024-06-24T03:12:00+08:00"


@pytest.mark.parametrize(("value", "expected"), [(100, "N"), (95, "N"), (94, "N"), (93, "L"), (90, "L"),
                                                 (89, "LL"), (85, "LL"), (84, "LL")])
def test_spo2_band_edges(value: int, expected: str) -> None:
    drafts = by_mdc(normalise(spot(q(value, Unit.PERCENT), q(72, Unit.PER_MINUTE))))
    assert drafts["150456"].interpretation == expected
    assert flag(drafts["150456"].resource) == expected


@pytest.mark.parametrize(("value", "expected"), [(60, "N"), (100, "N"), (59, "L"), (40, "L"), (39, "LL"),
                                                 (101, "H"), (130, "H"), (131, "HH")])
def test_pulse_band_edges(value: int, expected: str) -> None:
    drafts = by_mdc(normalise(spot(q(97, Unit.PERCENT), q(value, Unit.PER_MINUTE))))
    assert drafts["149530"].interpretation == expected


@pytest.mark.parametrize(("status", "reason"), [
    (StatusFlag.INVALID, "error"), (StatusFlag.MEASUREMENT_UNAVAILABLE, "not-performed"),
    (StatusFlag.FINGER_OUT, "not-performed"), (StatusFlag.SEARCHING, "temp-unknown"),
])
def test_voiding_status_replaces_values_with_absent_reason(status: StatusFlag, reason: str) -> None:
    drafts = by_mdc(normalise(spot(q(97, Unit.PERCENT), q(72, Unit.PER_MINUTE), status=frozenset({status}))))
    for mdc in ("150456", "149530"):
        res = drafts[mdc].resource
        assert "valueQuantity" not in res
        assert absent(res) == reason
        assert drafts[mdc].interpretation is None


def test_questionable_early_estimate_and_test_data() -> None:
    r = spot(q(97, Unit.PERCENT), q(72, Unit.PER_MINUTE), status=frozenset({
        StatusFlag.QUESTIONABLE, StatusFlag.EARLY_ESTIMATE, StatusFlag.TESTING_DATA}))
    res = by_mdc(normalise(r))["150456"].resource
    assert res["status"] == "preliminary"
    pocd = {c["coding"][0]["code"] for c in res["interpretation"] if c["coding"][0]["system"] == POCD}
    assert pocd == {"questionable", "early-indication"}
    assert flag(res) == "N"
    assert res["meta"]["security"] == [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                        "code": "HTEST", "display": "test health data"}]


def test_plx_device_status_bits_are_reversed() -> None:
    r = spot(q(97, Unit.PERCENT), q(72, Unit.PER_MINUTE), status=frozenset({
        StatusFlag.SENSOR_DISCONNECTED, StatusFlag.EXTENDED_DISPLAY_UPDATE, StatusFlag.SENSOR_UNCONNECTED}))
    bits = by_mdc(normalise(r))["150604"].resource
    got = {c["code"]["coding"][0]["code"]: c["code"]["text"] for c in bits["component"]}
    assert got == {"150604.0": "sensor-disconnected", "150604.15": "device-extended-update",
                   "150604.4": "sensor-off"}


@pytest.mark.parametrize("spo2", ["101", "100.5", "0"])
def test_impossible_spo2_rejected(spo2: str) -> None:
    with pytest.raises(ReadingError, match="physiologically"):
        observations_for(spot(q(spo2, Unit.PERCENT), q(72, Unit.PER_MINUTE)), PATIENT, SETTINGS)


# --- temperature ------------------------------------------------------------------------------------------


def temp(value: Quantity, **kw: Any) -> Reading:
    return reading(ReadingKind.BODY_TEMPERATURE, THERMOMETER, {Metric.BODY_TEMPERATURE: value}, **kw)


def test_temp1_celsius_keeps_precision() -> None:
    (draft,) = normalise(temp(q("36.8", Unit.CELSIUS), timed=False))
    assert codings(draft.resource["code"]) == [(LOINC, "8310-5"), (MDC, "150364")]
    assert draft.resource["valueQuantity"]["code"] == "Cel"
    assert draft.interpretation == "N"
    (precise,) = normalise(temp(Quantity(Decimal("36.80"), Unit.CELSIUS), timed=False))
    assert '"value":36.80,' in precise.json
    assert fhir_json.loads(precise.json)["valueQuantity"]["value"] == Decimal("36.80")
    assert str(fhir_json.loads(precise.json)["valueQuantity"]["value"]) == "36.80"
    assert "bodySite" not in draft.resource


def test_temp2_fahrenheit_ear() -> None:
    (draft,) = normalise(temp(q("98.6", Unit.FAHRENHEIT), body_site="ear"))
    assert draft.resource["valueQuantity"]["code"] == "[degF]"
    assert draft.interpretation == "N"          # 37.0 Cel
    assert draft.resource["bodySite"]["coding"][0]["code"] == "117590005"
    assert draft.resource["meta"]["profile"][0] == "http://hl7.org/fhir/StructureDefinition/bodytemp"


def test_temp3_nres_armpit() -> None:
    (draft,) = normalise(temp(Quantity.missing(AbsentReason.NOT_REPRESENTABLE, Unit.CELSIUS), timed=False,
                              body_site="armpit"))
    assert absent(draft.resource) == "error"
    assert draft.resource["bodySite"] == {"text": "armpit"}
    assert draft.interpretation is None


@pytest.mark.parametrize(("value", "expected"), [("37.2", "N"), ("37.3", "H"), ("39.1", "HH"), ("35.9", "L"),
                                                 ("34.9", "LL"), ("102.2", "H")])
def test_temperature_bands(value: str, expected: str) -> None:
    unit = Unit.FAHRENHEIT if Decimal(value) > 50 else Unit.CELSIUS
    (draft,) = normalise(temp(q(value, unit)))
    assert draft.interpretation == expected


def test_impossible_temperature_rejected() -> None:
    with pytest.raises(ReadingError, match="physiologically"):
        observations_for(temp(q("50.0", Unit.CELSIUS)), PATIENT, SETTINGS)


# --- weight scale -----------------------------------------------------------------------------------------


def scale(values: dict[Metric, Quantity], **kw: Any) -> Reading:
    return reading(ReadingKind.BODY_WEIGHT, SCALE, values, **kw)


def test_ws1_weight_only_keeps_resolution() -> None:
    (draft,) = normalise(scale({Metric.BODY_WEIGHT: q("72.400", Unit.KILOGRAM)}, timed=False))
    assert codings(draft.resource["code"]) == [(LOINC, "29463-7"), (MDC, "188736")]
    assert '"value":72.400,' in draft.json
    assert draft.interpretation is None and "interpretation" not in draft.resource


def test_ws2_imperial_weight_bmi_height() -> None:
    drafts = by_mdc(normalise(scale({
        Metric.BODY_WEIGHT: q("159.60", Unit.POUND), Metric.BMI: q("23.2", Unit.KG_PER_M2),
        Metric.BODY_HEIGHT: q("69.5", Unit.INCH)}, patient_hint="1")))
    assert set(drafts) == {"188736", "188740", "188752"}
    assert drafts["188736"].resource["valueQuantity"]["code"] == "[lb_av]"
    assert '"value":159.60,' in drafts["188736"].json
    assert drafts["188740"].resource["valueQuantity"]["code"] == "[in_i]"
    assert codings(drafts["188740"].resource["code"]) == [(LOINC, "8302-2"), (MDC, "188740")]
    assert codings(drafts["188752"].resource["code"]) == [(LOINC, "39156-5"), (MDC, "188752")]
    assert drafts["188752"].resource["valueQuantity"]["code"] == "kg/m2"


def test_ws3_unsuccessful_measurement() -> None:
    (draft,) = normalise(scale({Metric.BODY_WEIGHT: Quantity.missing(AbsentReason.MEASUREMENT_FAILED,
                                                                      Unit.KILOGRAM)}, timed=False))
    assert absent(draft.resource) == "error"
    assert "valueQuantity" not in draft.resource


def test_ws4_height_in_metres_sent_in_cm() -> None:
    drafts = by_mdc(normalise(scale({
        Metric.BODY_WEIGHT: q("72.400", Unit.KILOGRAM), Metric.BMI: q("22.9", Unit.KG_PER_M2),
        Metric.BODY_HEIGHT: q("1.780", Unit.METRE)}, timed=False)))
    height = drafts["188740"].resource["valueQuantity"]
    assert (str(height["value"]), height["code"]) == ("178.0", "cm")
    assert '"value":178.0,' in drafts["188740"].json


def test_impossible_weight_rejected() -> None:
    with pytest.raises(ReadingError, match="physiologically"):
        observations_for(scale({Metric.BODY_WEIGHT: q("1200", Unit.POUND)}), PATIENT, SETTINGS)
