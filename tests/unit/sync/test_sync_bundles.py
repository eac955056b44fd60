"""Bundle assembly from stored text: verbatim resources, urn fullUrls, conditional creates, batch rewriting."""

from __future__ import annotations

import json
from dataclasses import dataclass

from healthhut.sync.bundles import (
    identifier_query,
    location_reference,
    prepare_record,
    prerequisite_bundle,
    response_entries,
    transaction_bundle,
)

PHD = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation"
PATIENT_URN = "urn:uuid:d1482ed0-97ef-5db7-b1e9-1e6f8d955760"
DEVICE_URN = "urn:uuid:4cfc99bf-3365-5e86-9253-61fb84688124"
GATEWAY_URN = "urn:uuid:ec56fc3a-c56a-550a-995e-0ce9fe33a54c"
PATIENT = '{"resourceType":"Patient","identifier":[{"system":"urn:oid:2.999.1","value":"R1000"}]}'
DEVICE = ('{"resourceType":"Device","identifier":[{"system":"http://hl7.org/fhir/sid/eui-48/bluetooth",'
          '"value":"AA-BB-CC-DD-EE-01"}]}')
GATEWAY = '{"resourceType":"Device","identifier":[{"system":"urn:healthhut:site","value":"hut 1"}]}'


@dataclass(frozen=True)
class Item:
    outbox_id: int
    identifier: str
    observation_json: str
    patient_json: str = PATIENT
    device_json: str = DEVICE
    gateway_json: str | None = GATEWAY


def observation(value: str) -> str:
    # spacing and key order as a store might keep them: must reach the wire byte for byte
    return ('{"resourceType":"Observation", "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/'
            f'observation-gatewayDevice","valueReference":{{"reference":"{GATEWAY_URN}"}}}}],'
            f'"identifier":[{{"system":"{PHD}","value":"{value}"}}],"status":"final",'
            f'"code":{{"text":"x"}},"subject":{{"reference":"{PATIENT_URN}"}},'
            f'"device":{{"reference":"{DEVICE_URN}"}},"valueQuantity":{{"value":72.0}}}}')


def test_transaction_bundle_holds_stored_text_verbatim_with_conditional_creates() -> None:
    items = [Item(i, f"OBS-{i}", observation(f"OBS-{i}")) for i in (1, 2)]
    bundle = transaction_bundle([prepare_record(i) for i in items])
    for item in items:
        assert item.observation_json.encode() in bundle.body      # not re-serialised
    parsed = json.loads(bundle.body)
    assert parsed["type"] == "transaction"
    entries = parsed["entry"]
    # one Patient, the cuff and the gateway once each, then the two Observations
    assert [e["resource"]["resourceType"] for e in entries] == ["Patient", "Device", "Device",
                                                                "Observation", "Observation"]
    assert [e.get("fullUrl") for e in entries[:3]] == [PATIENT_URN, DEVICE_URN, GATEWAY_URN]
    assert entries[0]["request"] == {"method": "POST", "url": "Patient",
                                     "ifNoneExist": "identifier=urn:oid:2.999.1|R1000"}
    assert entries[3]["request"]["ifNoneExist"] == f"identifier={PHD}|OBS-1"
    assert bundle.observation_entry_index == (3, 4)
    assert bundle.outbox_ids == (1, 2)
    assert bundle.entry_count == 5


def test_identifier_query_encodes_what_a_url_cannot_carry() -> None:
    assert identifier_query("urn:oid:2.999.1", "A B&C") == "identifier=urn:oid:2.999.1|A%20B%26C"
    assert identifier_query(None, "x") == "identifier=x"


def test_batch_mode_posts_supporting_resources_first_then_rewrites_references() -> None:
    records = [prepare_record(Item(1, "OBS-1", observation("OBS-1")))]
    first = prerequisite_bundle(records, {})
    assert first is not None
    assert json.loads(first.body)["type"] == "batch"
    assert [s.full_url for s in first.supporting] == [PATIENT_URN, DEVICE_URN, GATEWAY_URN]
    resolved = {PATIENT_URN: "Patient/p1", DEVICE_URN: "Device/d1", GATEWAY_URN: "Device/g1"}
    assert prerequisite_bundle(records, resolved) is None
    second = transaction_bundle(records, bundle_type="batch", resolved=resolved)
    parsed = json.loads(second.body)
    assert parsed["type"] == "batch" and len(parsed["entry"]) == 1
    obs = parsed["entry"][0]["resource"]
    assert obs["subject"] == {"reference": "Patient/p1"}
    assert obs["device"] == {"reference": "Device/d1"}
    assert "urn:uuid" not in second.body.decode()


def test_record_without_gateway_reference_gets_no_gateway_entry() -> None:
    text = observation("OBS-9").replace(GATEWAY_URN, PATIENT_URN)
    record = prepare_record(Item(9, "OBS-9", text, gateway_json=None))
    assert [s.resource_type for s in record.supporting] == ["Patient", "Device"]


def test_response_entries_and_locations() -> None:
    reply = {"entry": [{"response": {"status": "201 Created", "location": "Patient/abc/_history/1"}},
                       {"response": {"status": "400", "outcome": {"resourceType": "OperationOutcome"}}},
                       {}]}
    rows = response_entries(reply)
    assert rows[0][0] == 201 and location_reference(rows[0][1]) == "Patient/abc"
    assert rows[1][0] == 400 and rows[1][2] == {"resourceType": "OperationOutcome"}
    assert rows[2] == (0, None, None)
    assert location_reference("https://x.example/fhir/Device/d1") == "Device/d1"
    assert location_reference(None) is None
