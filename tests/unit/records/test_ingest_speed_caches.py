"""The caches and fast paths of the ingest-speed work (issue 2) give what the slow paths gave.

The golden corpus (test_normalise_golden.py) checks whole outputs; these check the edges a cache could get
wrong: equal Decimals of different resolution, a value first seen in another unit, errors that must not be
remembered, short frames that must still fail field by field.
"""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from healthhut.drivers.codecs.gatt_time import read_date_time
from healthhut.drivers.codecs.ieee11073 import ByteReader, sfloat_from_raw, to_quantity
from healthhut.errors import DecodeError, ReadingError
from healthhut.readings import AbsentReason, DeviceIdentity, Quantity, Reading, ReadingKind, TimeSource, Transport, Unit
from healthhut.records import fhir_json, identity
from healthhut.records.drafts import PatientRef
from healthhut.records.observations import ObservationContext, base_observation
from healthhut.records.ranges import DEFAULT_RANGES
from healthhut.records.references import PROJECT_NAMESPACE, device_reference, patient_reference


def test_equal_decimals_of_other_resolution_keep_their_own_digits_in_json() -> None:
    for first, second in ((Decimal("120"), Decimal("120.0")), (Decimal("120.0"), Decimal("120")),
                          (Decimal("2E+1"), Decimal("20")), (Decimal("-0"), Decimal("0"))):
        assert fhir_json.dumps([first, second, first]) == \
            f"[{format(first, 'f')},{format(second, 'f')},{format(first, 'f')}]"


def test_json_refuses_nan_every_time_and_a_cycle() -> None:
    for _ in range(2):   # a refusal is not remembered as an answer
        with pytest.raises(ValueError):
            fhir_json.dumps({"value": Decimal("NaN")})
    looped: dict[str, object] = {}
    looped["self"] = [looped]
    with pytest.raises(RecursionError):
        fhir_json.dumps(looped)


def test_a_decimal_subclass_is_written_by_its_digits_not_its_str() -> None:
    class Shouting(Decimal):
        def __str__(self) -> str:
            return "LOUD"

    assert fhir_json.dumps([Shouting("1.50")]) == "[1.50]"


def test_quantities_keep_resolution_and_unit_whatever_was_seen_first() -> None:
    assert to_quantity(Decimal("120"), Unit.MMHG) == Quantity(Decimal("120"), Unit.MMHG)
    tenth = to_quantity(Decimal("120.0"), Unit.MMHG)
    assert tenth.value is not None and str(tenth.value) == "120.0"
    assert to_quantity(Decimal("120.0"), Unit.KPA).unit is Unit.KPA
    written_out = to_quantity(Decimal("2E+1"), Unit.PER_MINUTE)
    assert written_out.value is not None and str(written_out.value) == "20"
    assert to_quantity(AbsentReason.NOT_A_NUMBER, Unit.MMHG) == Quantity.missing(AbsentReason.NOT_A_NUMBER,
                                                                                   Unit.MMHG)
    with pytest.raises(ReadingError):   # still checked, and not remembered
        to_quantity(Decimal("NaN"), Unit.MMHG)
    with pytest.raises(ReadingError):
        to_quantity(Decimal("NaN"), Unit.MMHG)


def test_remembered_sfloats_are_the_decoded_values() -> None:
    assert str(sfloat_from_raw(0xE0C8)) == "2.00"
    assert str(sfloat_from_raw(0x1_E0C8)) == "2.00"      # only the low 16 bits count, cached or not
    assert sfloat_from_raw(0x07FF) is AbsentReason.NOT_A_NUMBER
    assert str(sfloat_from_raw(0x100C)) == "1.2E+2"


def test_unpack_consumes_nothing_when_short_and_u8_u16_fail_as_before() -> None:
    reader = ByteReader(bytes.fromhex("E8 07 06 17 0E 23"), "Date Time")
    assert reader.unpack(struct.Struct("<H5B")) is None
    assert reader.offset == 0
    with pytest.raises(DecodeError) as caught:
        read_date_time(reader)
    assert str(caught.value) == ("Date Time at byte 6: frame ends before Date Time seconds (1 bytes needed, "
                                 "0 left of 6)")
    short = ByteReader(b"\x01", "x")
    with pytest.raises(DecodeError) as caught:
        short.u16("a field")
    assert str(caught.value) == "x at byte 0: frame ends before a field (2 bytes needed, 1 left of 1)"
    assert short.u8() == 1 and short.offset == 1
    assert ByteReader(bytes.fromhex("34 12"), "x").u16() == 0x1234


def test_remembered_urns_are_the_uuid5_of_their_names() -> None:
    patient = PatientRef("urn:oid:2.999.1", "1234567")
    expected = uuid.uuid5(PROJECT_NAMESPACE, "patient\x1furn:oid:2.999.1\x1f1234567")
    assert patient_reference(patient) == patient_reference(patient) == f"urn:uuid:{expected}"
    assert device_reference("A") != device_reference("B")


def test_id_canonicalisation_still_refuses_a_bad_system_id_every_time() -> None:
    assert identity.canonical_system_id("00:1c:05:ff:fe:ff:e8:74") == "001C05FFFEFFE874"
    for _ in range(2):
        with pytest.raises(ReadingError):
            identity.canonical_system_id("not-an-id")
    ble = DeviceIdentity(Transport.BLE, address="00:1c:05:ff:e8:74")
    assert identity.bluetooth_address_hex(ble) == "001C05FFE874"
    assert identity.bluetooth_address_hex(DeviceIdentity(Transport.SERIAL, address="00:1c:05:ff:e8:74")) is None


def test_a_readings_observations_share_one_set_of_parts_with_the_public_key_functions() -> None:
    reading = Reading(kind=ReadingKind.SPO2, device=DeviceIdentity(Transport.BLE, address="A4:C1:38:00:11:22"),
                      received_at=datetime(2024, 6, 23, 6, 36, 2, 120000, tzinfo=UTC),
                      measured_at=datetime(1999, 12, 31, 23, 59, 59, 250000, tzinfo=UTC),
                      time_source=TimeSource.DEVICE)
    patient = PatientRef("urn:oid:2.999.1", "1234567")
    ctx = ObservationContext(reading=reading, patient=patient, site_id="hut-07", ranges=DEFAULT_RANGES)
    assert ctx.parts() is ctx.parts()
    resource, key, identifier = base_observation(ctx, {"text": "x"}, "150456", [])
    assert key == identity.local_key(reading, "150456")
    assert identifier == identity.observation_identifier(reading, patient, "150456")
    assert identity.device_timestamp_token(reading) == "-0.75"
    assert resource["identifier"] == [identity.identifier_element(reading, patient, "150456")]
