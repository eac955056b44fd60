"""Identifiers, references, ranges, canonical JSON, Device/Patient resources and kind dispatch of the normaliser."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from healthhut.errors import ReadingError
from healthhut.readings import DeviceIdentity, Metric, Quantity, Reading, ReadingKind, TimeSource, Transport, Unit
from healthhut.records import fhir_json
from healthhut.records.drafts import PatientRef
from healthhut.records.identity import (
    IDENTIFIER_SYSTEM,
    canonical_system_id,
    device_timestamp_token,
    local_key,
    observation_identifier,
)
from healthhut.records.normalise import (
    KIND_BUILDERS,
    NormaliseSettings,
    device_resource,
    gateway_resource,
    observations_for,
    patient_resource,
)
from healthhut.records.observations import ObservationContext, PendingObservation
from healthhut.records.ranges import DEFAULT_RANGES, ranges_from_mapping
from healthhut.records.references import device_reference, gateway_reference, patient_reference

UTC3 = timezone(timedelta(hours=3))
PATIENT = PatientRef("urn:oid:2.999.1", "1234567")
BPM = DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74", system_id="001C05FFFEFFE874")


def bp(**kw: Any) -> Reading:
    base: dict[str, Any] = dict(
        kind=ReadingKind.BLOOD_PRESSURE, device=BPM, received_at=datetime(2024, 6, 23, 14, 36, 2, tzinfo=UTC3),
        values={Metric.SYSTOLIC: Quantity.of(120, Unit.MMHG), Metric.DIASTOLIC: Quantity.of(80, Unit.MMHG)},
        measured_at=datetime(2024, 6, 23, 14, 35, 10, tzinfo=UTC3), time_source=TimeSource.DEVICE)
    base.update(kw)
    return Reading(**base)


# --- identity ---------------------------------------------------------------------------------------------


def test_identifier_matches_the_reference_example() -> None:
    assert observation_identifier(bp(), PATIENT, "150020") == \
        "001C05FFFEFFE874-1234567-urn:oid:2.999.1-150020-772468510"
    assert IDENTIFIER_SYSTEM == "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation"
    assert local_key(bp(), "150020") == "001C05FFFEFFE874-150020-772468510"


def test_timestamp_is_device_wall_clock_whatever_the_offset_and_skew() -> None:
    utc_wall = bp(measured_at=datetime(2024, 6, 23, 14, 35, 10, tzinfo=UTC))
    assert device_timestamp_token(utc_wall) == "772468510"
    assert device_timestamp_token(bp(clock_skew=timedelta(hours=2))) == "772468510"
    fractional = bp(measured_at=datetime(2024, 6, 23, 14, 35, 10, 500000, tzinfo=UTC3))
    assert device_timestamp_token(fractional) == "772468510.5"


def test_timestamp_without_device_clock_uses_sequence_then_receive_time() -> None:
    received = datetime(2024, 6, 23, 11, 36, 2, tzinfo=UTC)
    unknown = bp(measured_at=None, time_source=TimeSource.UNKNOWN, received_at=received)
    assert device_timestamp_token(unknown) == "772457762"
    assert device_timestamp_token(bp(measured_at=None, time_source=TimeSource.UNKNOWN, sequence=42)) == "seq42"
    receipt = bp(measured_at=received, time_source=TimeSource.RECEIPT, received_at=received)
    assert device_timestamp_token(receipt) == "772457762"


def test_device_part_falls_back_to_bluetooth_address_then_key() -> None:
    no_sysid = DeviceIdentity(Transport.BLE, address="00:1c:05:ff:e8:74")
    assert observation_identifier(bp(device=no_sysid), PATIENT, "150020").startswith("001C05FFE874-1234567-")
    serial = DeviceIdentity(Transport.SERIAL, address="/dev/ttyUSB0", model="CMS50D", serial="A123")
    assert observation_identifier(bp(device=serial), PATIENT, "150020").startswith("CMS50D-A123-1234567-")
    portless = DeviceIdentity(Transport.SERIAL, address="/dev/ttyUSB0")
    assert observation_identifier(bp(device=portless), PATIENT, "150020").startswith("/dev/ttyUSB0-1234567-")
    assert canonical_system_id("00-1c-05-ff-fe-ff-e8-74") == "001C05FFFEFFE874"
    with pytest.raises(ReadingError):
        canonical_system_id("001C05FFE874")


def test_references_are_deterministic_urns_and_distinct() -> None:
    assert patient_reference(PATIENT) == patient_reference(PatientRef("urn:oid:2.999.1", "1234567"))
    assert patient_reference(PATIENT) != patient_reference(PatientRef("urn:oid:2.999.2", "1234567"))
    refs = {patient_reference(PATIENT), device_reference("001C05FFFEFFE874"), gateway_reference("hut-07"),
            gateway_reference("hut-08")}
    assert len(refs) == 4
    assert all(r.startswith("urn:uuid:") and len(r) == 45 for r in refs)
    # pinned: a changed namespace would orphan every reference already on the server
    assert gateway_reference("hut-07") == gateway_reference("hut-07")
    assert device_reference("X") == "urn:uuid:" + str(__import__("uuid").uuid5(
        __import__("uuid").UUID("11b2964d-679a-56e1-aba3-e43b61f93a94"), "device\x1fX"))


# --- ranges -----------------------------------------------------------------------------------------------


def test_ranges_from_mapping_overrides_and_names_bad_keys() -> None:
    ranges = ranges_from_mapping({"spo2_low_below": 90, "spo2_very_low_below": 85.5, "temperature_high_from": "37.5"})
    assert ranges.spo2_low_below == Decimal(90)
    assert ranges.spo2_very_low_below == Decimal("85.5")
    assert ranges.temperature_high_from == Decimal("37.5")
    assert ranges.systolic_high_from == DEFAULT_RANGES.systolic_high_from
    with pytest.raises(ReadingError, match="spo2_lo"):
        ranges_from_mapping({"spo2_lo": 90})
    with pytest.raises(ReadingError, match="pulse_high_above"):
        ranges_from_mapping({"pulse_high_above": "fast"})
    with pytest.raises(ReadingError, match="pulse_high_above"):
        ranges_from_mapping({"pulse_high_above": True})
    with pytest.raises(ReadingError, match="systolic_high_from"):
        ranges_from_mapping({"systolic_high_from": 200})


def test_overridden_ranges_change_interpretation() -> None:
    altitude = NormaliseSettings("hut-07", ranges=ranges_from_mapping({"spo2_low_below": 88,
                                                                       "spo2_very_low_below": 85}))
    reading = Reading(kind=ReadingKind.SPO2, device=BPM, received_at=datetime(2024, 6, 23, tzinfo=UTC3),
                      measured_at=datetime(2024, 6, 23, tzinfo=UTC3),
                      values={Metric.SPO2: Quantity.of(89, Unit.PERCENT)})
    assert observations_for(reading, PATIENT, NormaliseSettings("hut-07"))[0].interpretation == "LL"
    assert observations_for(reading, PATIENT, altitude)[0].interpretation == "N"


# --- canonical JSON ---------------------------------------------------------------------------------------


def test_canonical_json_keeps_decimal_text() -> None:
    doc = {"a": Decimal("36.80"), "b": [Decimal("2E+1"), Decimal("2.00"), Decimal("-0.5"), 3, True, None],
           "c": "é"}
    text = fhir_json.dumps(doc)
    assert text == '{"a":36.80,"b":[20,2.00,-0.5,3,true,null],"c":"é"}'
    assert fhir_json.loads(text) == doc
    with pytest.raises(ValueError):
        fhir_json.dumps({"x": Decimal("NaN")})
    with pytest.raises(TypeError):
        fhir_json.dumps({"x": object()})


# --- Device / Patient -------------------------------------------------------------------------------------


def test_device_resource_is_a_valid_phd_device() -> None:
    from fhir.resources.R4B.device import Device

    device = DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74", system_id="001C05FFFEFFE874",
                            name="BP cuff 2", manufacturer="A&D Medical\x00\x00", model="UA-651BLE",
                            serial="5140600123", firmware="1.2", hardware="B", software="3.0")
    resource = device_resource(device, kinds=[ReadingKind.BLOOD_PRESSURE])
    Device.model_validate(resource)
    ids = {i["type"]["coding"][0]["code"]: i for i in resource["identifier"]}
    assert ids["SYSID"]["value"] == "00-1C-05-FF-FE-FF-E8-74"
    assert ids["SYSID"]["system"] == "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"
    assert ids["BTMAC"] == {"type": ids["BTMAC"]["type"], "system": "http://hl7.org/fhir/sid/eui-48/bluetooth",
                            "value": "00-1C-05-FF-E8-74"}
    assert resource["manufacturer"] == "A&D Medical"
    assert resource["type"]["coding"][0]["code"] == "65573"
    assert resource["specialization"][0]["systemType"]["coding"][0]["code"] == "528391"
    versions = {v["type"]["coding"][0]["code"]: v["value"] for v in resource["version"]}
    assert versions == {"531974": "B", "531975": "3.0", "531976": "1.2"}


def test_serial_device_and_gateway_and_patient_validate() -> None:
    from fhir.resources.R4B.device import Device
    from fhir.resources.R4B.patient import Patient

    serial = device_resource(DeviceIdentity(Transport.SERIAL, address="/dev/ttyUSB0", model="CMS50D+",
                                            serial="X1"), kinds=[ReadingKind.SPO2])
    Device.model_validate(serial)
    assert serial["identifier"] == [{"system": "https://healthhut.example/fhir/sid/device-key",
                                     "value": "CMS50D+-X1"}]
    assert serial["serialNumber"] == "X1"
    gateway = gateway_resource("hut-07", "Village 7 health hut")
    Device.model_validate(gateway)
    assert gateway["type"]["coding"][0]["code"] == "531981"
    assert gateway["property"][0]["valueCode"][0]["coding"][0]["code"] == "532226"
    patient = patient_resource(PATIENT)
    Patient.model_validate(patient)
    assert patient == {"resourceType": "Patient",
                       "identifier": [{"system": "urn:oid:2.999.1", "value": "1234567"}]}


# --- dispatch and import cost -----------------------------------------------------------------------------


def test_unmapped_kind_is_refused_and_settings_can_add_a_builder() -> None:
    sleep = Reading(kind=ReadingKind.SLEEP_SUMMARY, device=BPM, received_at=datetime(2024, 6, 23, tzinfo=UTC3),
                    measured_at=datetime(2024, 6, 23, tzinfo=UTC3))
    assert ReadingKind.SLEEP_SUMMARY not in KIND_BUILDERS
    with pytest.raises(ReadingError, match="not handled here"):
        observations_for(sleep, PATIENT, NormaliseSettings("hut-07"))

    def build(ctx: ObservationContext) -> list[PendingObservation]:
        resource = {"resourceType": "Observation", "status": "final", "code": {"text": "sleep"}}
        return [PendingObservation(resource, "k", None, "x", None, None)]

    drafts = observations_for(sleep, None, NormaliseSettings("hut-07", builders={ReadingKind.SLEEP_SUMMARY: build}))
    assert [d.json for d in drafts] == ['{"resourceType":"Observation","status":"final","code":{"text":"sleep"}}']


def test_invalid_builder_output_is_a_reading_error_without_values() -> None:
    def build(ctx: ObservationContext) -> list[PendingObservation]:
        resource = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                    "effectiveDateTime": "secret-1234567"}
        return [PendingObservation(resource, "k", None, "x", None, None)]

    sleep = Reading(kind=ReadingKind.SLEEP_SUMMARY, device=BPM, received_at=datetime(2024, 6, 23, tzinfo=UTC3),
                    measured_at=datetime(2024, 6, 23, tzinfo=UTC3))
    with pytest.raises(ReadingError, match="effectiveDateTime") as info:
        observations_for(sleep, None, NormaliseSettings("hut-07", builders={ReadingKind.SLEEP_SUMMARY: build}))
    assert "1234567" not in str(info.value)


def test_builder_output_json_cannot_carry_is_a_reading_error() -> None:
    def build(ctx: ObservationContext) -> list[PendingObservation]:
        resource = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                    "valueQuantity": {"value": Decimal("NaN")}}
        return [PendingObservation(resource, "k", None, "x", None, None)]

    sleep = Reading(kind=ReadingKind.SLEEP_SUMMARY, device=BPM, received_at=datetime(2024, 6, 23, tzinfo=UTC3),
                    measured_at=datetime(2024, 6, 23, tzinfo=UTC3))
    with pytest.raises(ReadingError, match="JSON cannot carry"):
        observations_for(sleep, None, NormaliseSettings("hut-07", builders={ReadingKind.SLEEP_SUMMARY: build}))


def test_importing_the_normaliser_does_not_import_fhir_resources() -> None:
    code = ("import sys, healthhut.records, healthhut.records.normalise, healthhut.records.vital_signs;"
            "sys.exit(any(m.startswith('fhir') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
