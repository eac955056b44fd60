"""A stored DiagnosticReport (a night's) travels like an Observation: its own type in request.url, its own
identifier in ifNoneExist, its Patient urn resolved by the same bundle."""

from __future__ import annotations

import json
from dataclasses import dataclass

from healthhut.sync.bundles import prepare_record, transaction_bundle

PHD = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation"
REPORT_SYSTEM = "https://healthhut.example/fhir/sid/report"
PATIENT_URN = "urn:uuid:d1482ed0-97ef-5db7-b1e9-1e6f8d955760"
PATIENT = '{"resourceType":"Patient","identifier":[{"system":"urn:oid:2.999.1","value":"R1000"}]}'
DEVICE = '{"resourceType":"Device","identifier":[{"system":"urn:x","value":"d1"}]}'
REPORT = ('{"resourceType":"DiagnosticReport","identifier":[{"system":"' + REPORT_SYSTEM + '","value":"REP-1"}],'
          '"status":"final","code":{"text":"sleep"},"subject":{"reference":"' + PATIENT_URN + '"},'
          '"result":[{"type":"Observation","identifier":{"system":"' + PHD + '","value":"OBS-1"}}],'
          '"conclusion":"REI 31.0/h"}')


@dataclass(frozen=True)
class Item:
    outbox_id: int
    identifier: str
    observation_json: str
    patient_json: str = PATIENT
    device_json: str = DEVICE
    gateway_json: str | None = None
    resource_type: str = "DiagnosticReport"


def test_a_report_entry_posts_to_its_own_type_with_a_conditional_create_on_its_identifier() -> None:
    record = prepare_record(Item(5, "REP-1", REPORT))
    assert record.resource_type == "DiagnosticReport"
    bundle = transaction_bundle([record])
    assert REPORT.encode() in bundle.body   # verbatim
    entries = json.loads(bundle.body)["entry"]
    assert [e["resource"]["resourceType"] for e in entries] == ["Patient", "DiagnosticReport"]
    assert entries[0]["fullUrl"] == PATIENT_URN    # the report's subject resolves in the same bundle
    assert entries[1]["request"] == {"method": "POST", "url": "DiagnosticReport",
                                     "ifNoneExist": f"identifier={REPORT_SYSTEM}|REP-1"}
    assert bundle.observation_entry_index == (1,)


def test_resolved_patient_is_rewritten_in_the_report_too() -> None:
    record = prepare_record(Item(5, "REP-1", REPORT))
    bundle = transaction_bundle([record], resolved={PATIENT_URN: "Patient/p1"})
    (entry,) = json.loads(bundle.body)["entry"]
    assert entry["resource"]["subject"] == {"reference": "Patient/p1"}
    assert entry["request"]["url"] == "DiagnosticReport"
