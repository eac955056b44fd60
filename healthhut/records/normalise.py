"""Reading -> validated, serialised FHIR Observation drafts: the normaliser's entry point.

Which builder handles which ReadingKind is the table KIND_BUILDERS ("module:function", imported on first
use, like the codec registry). Another module adds a kind with one line there, e.g.
`ReadingKind.SLEEP_SUMMARY: "healthhut.records.sleep.fhir:sleep_summary_observations"`; a builder is
`(ObservationContext) -> list[PendingObservation]` (see records.observations). For one call without editing
the table (tests, experiments) pass `NormaliseSettings(builders={kind: builder})`.

fhir.resources is imported only when an Observation is validated, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import cast

from healthhut.errors import ReadingError
from healthhut.readings import Reading, ReadingKind
from healthhut.records import fhir_json
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.observations import ObservationBuilder, ObservationContext, PendingObservation
from healthhut.records.ranges import DEFAULT_RANGES, ReferenceRanges
from healthhut.records.resources import device_resource, gateway_resource, patient_resource
from healthhut.records.shape_validation import ShapeValidator

__all__ = [
    "KIND_BUILDERS",
    "NormaliseSettings",
    "assemble_draft",
    "build_observations",
    "device_resource",
    "gateway_resource",
    "observations_for",
    "patient_resource",
]

KIND_BUILDERS: Mapping[ReadingKind, str] = MappingProxyType({
    ReadingKind.BLOOD_PRESSURE: "healthhut.records.vital_signs:blood_pressure_observations",
    ReadingKind.SPO2: "healthhut.records.vital_signs:spo2_observations",
    ReadingKind.BODY_TEMPERATURE: "healthhut.records.vital_signs:body_temperature_observations",
    ReadingKind.BODY_WEIGHT: "healthhut.records.vital_signs:body_weight_observations",
    ReadingKind.OXIMETRY_SERIES: "healthhut.records.sleep.fhir:oximetry_series_observations",
})
OBSERVATION_MODEL = "fhir.resources.R4B.observation:Observation"


def _observation_validator() -> ShapeValidator:
    return ShapeValidator(OBSERVATION_MODEL)


@dataclass(frozen=True, slots=True)
class NormaliseSettings:
    """Per-site settings of the normaliser. `builders` adds or overrides kinds for this settings object.

    `validator` remembers which Observation shapes the full R4B model has accepted (records.shape_validation):
    it lives as long as the settings, i.e. as long as the Ingestor of a site.
    """

    site_id: str
    ranges: ReferenceRanges = DEFAULT_RANGES
    builders: Mapping[ReadingKind, ObservationBuilder] = field(default_factory=dict)
    validator: ShapeValidator = field(default_factory=_observation_validator, compare=False, repr=False)


def _builder(kind: ReadingKind, settings: NormaliseSettings) -> ObservationBuilder:
    if kind in settings.builders:
        return settings.builders[kind]
    target = KIND_BUILDERS.get(kind)
    if target is None:
        raise ReadingError(f"readings of kind {kind.value} are not handled here")
    return _resolve(target)


@functools.lru_cache(maxsize=64)  # a handful of "module:function" texts; resolving one costs an import lookup
def _resolve(target: str) -> ObservationBuilder:
    module_name, _, function_name = target.partition(":")
    return cast(ObservationBuilder, getattr(importlib.import_module(module_name), function_name))


def assemble_draft(pending: PendingObservation, reading: Reading, text: str) -> ObservationDraft:
    """The draft of a pending Observation whose serialisation `text` has been validated."""
    return ObservationDraft(
        local_key=pending.local_key,
        identifier=pending.identifier,
        code=pending.code,
        mdc_code=pending.mdc_code,
        effective_at=reading.effective_at,
        interpretation=pending.interpretation,
        resource=pending.resource,
        json=text,
    )


def _draft(pending: PendingObservation, reading: Reading, validator: ShapeValidator) -> ObservationDraft:
    try:
        text = fhir_json.dumps(pending.resource)    # serialised once: this text is what the store keeps
    except (TypeError, ValueError):
        raise ReadingError("the FHIR Observation holds a value JSON cannot carry") from None
    if pending.resource.get("resourceType") == "Observation":
        validator.validate(text)                    # once per record, here, never again downstream
    else:  # a report grouping the reading's Observations (records.validation lists the types kept)
        from healthhut.records.validation import validate_resource

        validate_resource(pending.resource)
    return assemble_draft(pending, reading, text)


def build_observations(reading: Reading, patient: PatientRef | None,
                       settings: NormaliseSettings) -> list[PendingObservation]:
    """The Observations of one reading as built, JSON-ready dicts: not yet validated nor serialised."""
    build = _builder(reading.kind, settings)
    return build(ObservationContext(reading=reading, patient=patient, site_id=settings.site_id,
                                    ranges=settings.ranges))


def observations_for(reading: Reading, patient: PatientRef | None,
                     settings: NormaliseSettings) -> list[ObservationDraft]:
    """The Observations of one reading, validated once and serialised once.

    `patient=None` makes "held" drafts: no subject and no identifier; call again with the resident once known
    (the identifier depends on them). A physiologically impossible value raises ReadingError whose message
    names no value.
    """
    validator = settings.validator
    return [_draft(pending, reading, validator) for pending in build_observations(reading, patient, settings)]
