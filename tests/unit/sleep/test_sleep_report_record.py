"""The night's DiagnosticReport as a stored record: built by the OXIMETRY_SERIES builder, validated as R4B."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from healthhut.errors import ReadingError
from healthhut.readings import DeviceIdentity, Reading, ReadingKind, Transport
from healthhut.records.drafts import PatientRef
from healthhut.records.identity import REPORT_IDENTIFIER_SYSTEM, device_timestamp_token
from healthhut.records.normalise import NormaliseSettings, observations_for
from healthhut.records.observations import ObservationContext, PendingObservation
from healthhut.records.sleep import plot
from healthhut.records.sleep.fhir import night_builder
from healthhut.records.sleep.series import reading_from_night
from healthhut.records.sleep.synthetic import osa_night, synthetic_night
from healthhut.records.validation import validate_resource

PATIENT = PatientRef("urn:oid:2.999.1", "7654321")
DEVICE = DeviceIdentity(transport=Transport.FILE, model="HSAT", serial="B2")


@pytest.fixture(scope="module")
def reading() -> Reading:
    spec, _, _ = osa_night(1.2, flow_hz=5.0)
    return reading_from_night(synthetic_night(spec), DEVICE, datetime(2026, 11, 29, 7, 0, tzinfo=UTC))


def settings(**builder: Any) -> NormaliseSettings:
    return NormaliseSettings(site_id="hut-07", builders={ReadingKind.OXIMETRY_SERIES: night_builder(**builder)})


def test_the_report_identifier_names_device_resident_report_and_device_start(reading: Reading) -> None:
    report = observations_for(reading, PATIENT, settings(plot=False))[-1]
    assert report.resource_type == "DiagnosticReport" and report.code == "sleep-screening-report"
    assert report.identifier == f"HSAT-B2-7654321-urn:oid:2.999.1-sleep-screening-report-" \
                                f"{device_timestamp_token(reading)}"
    assert report.resource["identifier"] == [{"system": REPORT_IDENTIFIER_SYSTEM, "value": report.identifier}]
    assert report.local_key == f"{reading.device.key}-sleep-screening-report-{device_timestamp_token(reading)}"
    assert report.resource["issued"] == reading.received_at.isoformat()


def test_a_plot_that_fails_to_draw_leaves_the_report_without_it(reading: Reading,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object, **_kwargs: object) -> bytes:
        raise RuntimeError("font cache")

    monkeypatch.setattr(plot, "render_night_png", broken)
    drafts = observations_for(reading, PATIENT, settings())
    assert drafts[-1].resource_type == "DiagnosticReport" and "presentedForm" not in drafts[-1].resource


def test_a_broken_report_is_refused_naming_only_where(reading: Reading) -> None:
    def bad_report(ctx: ObservationContext) -> list[PendingObservation]:
        built = night_builder(plot=False)(ctx)
        report = dict(built[-1].resource, bogusElement="SECRET-VALUE")
        return [*built[:-1], PendingObservation(report, "k", "i", "c", None, None)]

    broken = NormaliseSettings(site_id="hut-07", builders={ReadingKind.OXIMETRY_SERIES: bad_report})
    with pytest.raises(ReadingError) as caught:
        observations_for(reading, PATIENT, broken)
    assert "DiagnosticReport does not validate at bogusElement" in caught.value.message
    assert "SECRET" not in caught.value.message


def test_only_listed_resource_types_are_kept() -> None:
    with pytest.raises(ReadingError, match="Encounter"):
        validate_resource({"resourceType": "Encounter", "status": "finished"})
