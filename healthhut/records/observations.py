"""The parts every Observation shares: skeleton, quantities, absent reasons, status bits, time quality.

Per-kind builders (vital_signs.py, and other rooms' modules such as sleep) take an `ObservationContext` and
return `PendingObservation`s: JSON-ready dicts not yet validated. `normalise.observations_for` validates each
once and serialises it once into an `ObservationDraft`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from healthhut.errors import ReadingError
from healthhut.readings import AbsentReason, Quantity, Reading, StatusFlag, TimeSource
from healthhut.records import codes
from healthhut.records.drafts import PatientRef
from healthhut.records.identity import (
    IDENTIFIER_SYSTEM,
    device_part,
    device_timestamp_token,
    local_key_of,
    observation_identifier_of,
    supplemental_types,
)
from healthhut.records.interpretation import interpretation_concept
from healthhut.records.ranges import PLAUSIBLE_LIMITS, ReferenceRanges
from healthhut.records.references import device_reference, gateway_reference, patient_reference


class ReadingParts(NamedTuple):
    """What every Observation of one reading repeats, worked out once per reading (not once per Observation):
    the urns (a UUIDv5 each), the device parts and time token of keys and identifiers, the two times as text,
    the status and the time-quality note. A NamedTuple: immutable, and cheaper to make than a frozen dataclass."""

    gateway_ref: str
    subject_ref: str | None      # None when held
    device_ref: str
    device_key: str
    device_part: str | None      # of the identifier; only computed with a resident
    timestamp_token: str
    effective: str               # effectiveDateTime
    issued: str
    status: str                  # Observation.status
    time_quality: tuple[str, str] | None
    test_data: bool              # testing or demonstration data: meta.security HTEST


@dataclass(frozen=True, slots=True)
class ObservationContext:
    """What a builder needs besides the Reading: the resident (None = held), the site, the ranges."""

    reading: Reading
    patient: PatientRef | None
    site_id: str
    ranges: ReferenceRanges
    # the reading's ReadingParts, made on first use: every Observation of the reading shares them
    _parts: list[ReadingParts] = field(default_factory=list, init=False, repr=False, compare=False)

    def references(self) -> tuple[str, str | None, str]:
        """The gateway, subject (None when held) and device references of this reading's Observations."""
        parts = self.parts()
        return parts.gateway_ref, parts.subject_ref, parts.device_ref

    def parts(self) -> ReadingParts:
        """The parts every Observation of this reading shares (see ReadingParts); made once."""
        if not self._parts:
            self._parts.append(_reading_parts(self))
        return self._parts[0]


def _reading_parts(ctx: ObservationContext) -> ReadingParts:
    # The order is the one a first base_observation used to follow, so a bad device raises the same error:
    # the device key (references), then the identifier's device part.
    reading = ctx.reading
    subject = patient_reference(ctx.patient) if ctx.patient is not None else None
    device_key = reading.device.key
    gateway_ref, device_ref = gateway_reference(ctx.site_id), device_reference(device_key)
    status = reading.status
    return ReadingParts(
        gateway_ref=gateway_ref, subject_ref=subject, device_ref=device_ref, device_key=device_key,
        device_part=device_part(reading.device) if ctx.patient is not None else None,
        timestamp_token=device_timestamp_token(reading),
        effective=reading.effective_at.isoformat(), issued=reading.received_at.isoformat(),
        status=measurement_state(reading)[0], time_quality=_time_quality(reading),
        test_data=StatusFlag.TESTING_DATA in status or StatusFlag.DEMONSTRATION_DATA in status)


@dataclass(frozen=True, slots=True)
class PendingObservation:
    """A built, not yet validated Observation with the index columns of its future ObservationDraft."""

    resource: dict[str, Any]
    local_key: str
    identifier: str | None
    code: str
    mdc_code: str | None
    interpretation: str | None


ObservationBuilder = Callable[[ObservationContext], list[PendingObservation]]

# AbsentReason -> data-absent-reason (reference §1.3 table; MEASUREMENT_FAILED and OUT_OF_RANGE are device
# errors -> "error"; SENSOR_OFF means nothing was measured -> "not-performed").
_ABSENT_CODES: dict[AbsentReason, codes.Code] = {
    AbsentReason.NOT_A_NUMBER: codes.DAR_NOT_A_NUMBER,
    AbsentReason.NOT_REPRESENTABLE: codes.DAR_ERROR,
    AbsentReason.POSITIVE_INFINITY: codes.DAR_POSITIVE_INFINITY,
    AbsentReason.NEGATIVE_INFINITY: codes.DAR_NEGATIVE_INFINITY,
    AbsentReason.RESERVED: codes.DAR_ERROR,
    AbsentReason.MEASUREMENT_FAILED: codes.DAR_ERROR,
    AbsentReason.OUT_OF_RANGE: codes.DAR_ERROR,
    AbsentReason.SENSOR_OFF: codes.DAR_NOT_PERFORMED,
}

# Status flags that void every value of the reading, in priority order ("the status mapping wins" over a
# special value, reference §1.3). SEARCHING: the device shows stale numbers while it looks for a pulse;
# "temp-unknown" says a value may follow, which is what the device is doing.
_VOIDING_FLAGS: tuple[tuple[StatusFlag, codes.Code], ...] = (
    (StatusFlag.INVALID, codes.DAR_ERROR),
    (StatusFlag.MEASUREMENT_UNAVAILABLE, codes.DAR_NOT_PERFORMED),
    (StatusFlag.FINGER_OUT, codes.DAR_NOT_PERFORMED),
    (StatusFlag.SEARCHING, codes.DAR_TEMP_UNKNOWN),
)

# The supplemental-type codes identity.supplemental_types can name, by code (made once; frozen Codes).
_SUPPLEMENTAL_TYPE_CODES: Mapping[str, codes.Code] = MappingProxyType({
    codes.MODALITY_SPOT_MDC.code: codes.MODALITY_SPOT_MDC,
})

# Time quality, shown to doctors (extension valueCode + a note).
TIME_CORRECTED = "corrected"
TIME_UNKNOWN = "unknown"


def voided_by_status(reading: Reading) -> codes.Code | None:
    """The absent reason every value gets because of a status flag, or None."""
    status = reading.status
    if not status:   # most readings: no flag at all
        return None
    for flag, code in _VOIDING_FLAGS:
        if flag in status:
            return code
    return None


def quantity_element(value: Decimal, unit_code: str) -> dict[str, Any]:
    return {"value": value, "unit": codes.UNIT_DISPLAY.get(unit_code, unit_code), "system": codes.UCUM,
            "code": unit_code}


def absent_element(reason: AbsentReason | codes.Code) -> dict[str, Any]:
    code = reason if isinstance(reason, codes.Code) else _ABSENT_CODES[reason]
    return {"dataAbsentReason": code.concept()}


def require_unit(quantity: Quantity, allowed: Iterable[str], what: str) -> None:
    # builders pass a tuple: looked up as it is (a set made per value cost more than the lookup)
    if quantity.unit not in (allowed if isinstance(allowed, tuple | frozenset | set) else set(allowed)):
        raise ReadingError(f"{what} has a unit this mapping does not accept")


def check_plausible(metric_name: str, canonical_value: Decimal, what: str) -> None:
    """ReadingError (naming no value) if the value is physiologically impossible."""
    low, high = PLAUSIBLE_LIMITS[metric_name]
    if not low <= canonical_value <= high:
        raise ReadingError(f"{what} is outside the physiologically possible range")


def measurement_state(reading: Reading) -> tuple[str, list[dict[str, Any]]]:
    """Observation.status and the PoCD measurement-status interpretations from PLX measurement status.

    EARLY_ESTIMATE -> preliminary + early-indication. MEASUREMENT_ONGOING -> preliminary too: the device says
    the numbers are not final, and the IG names no absent reason for it (reference §3.5, [U]).
    """
    status = "final"
    extra: list[dict[str, Any]] = []
    if not reading.status:   # most readings: no flag at all
        return status, extra
    if StatusFlag.EARLY_ESTIMATE in reading.status:
        status = "preliminary"
        extra.append(codes.POCD_EARLY_INDICATION.concept())
    if StatusFlag.MEASUREMENT_ONGOING in reading.status:
        status = "preliminary"
    if StatusFlag.QUESTIONABLE in reading.status:
        extra.append(codes.POCD_QUESTIONABLE.concept())
    if StatusFlag.CALIBRATION_ONGOING in reading.status:
        extra.append(codes.POCD_CALIBRATION_ONGOING.concept())
    return status, extra


def _time_quality(reading: Reading) -> tuple[str, str] | None:
    if reading.time_source is TimeSource.UNKNOWN:
        return TIME_UNKNOWN, ("Measurement time uncertain: the device clock was not set, so the time shown is "
                              "when the gateway received the reading.")
    if reading.time_corrected and reading.clock_skew is not None:
        # clock_skew = gateway clock - device clock: positive means the device clock was behind.
        seconds = int(reading.clock_skew.total_seconds())
        direction = "behind" if seconds > 0 else "ahead of"
        return TIME_CORRECTED, (f"Measurement time corrected: the device clock was {abs(seconds)} s {direction} "
                                "the gateway clock; the time shown is on the gateway clock.")
    return None


def base_observation(ctx: ObservationContext, code: dict[str, Any], mdc_code: str, profiles: list[str],
                     *, vital_signs: bool = True) -> tuple[dict[str, Any], str, str | None]:
    """The skeleton of one Observation, with its local key and identifier (None when held).

    Returns a dict ordered like the FHIR element order; callers add value/dataAbsentReason, interpretation,
    bodySite, derivedFrom and components.
    """
    reading = ctx.reading
    parts = ctx.parts()
    meta: dict[str, Any] = {"profile": [*profiles]}
    if parts.test_data:
        meta["security"] = [codes.SECURITY_HTEST.coding()]
    extensions: list[dict[str, Any]] = [
        {"url": codes.GATEWAY_DEVICE_EXTENSION, "valueReference": {"reference": parts.gateway_ref}},
    ]
    quality = parts.time_quality
    if quality:
        extensions.append({"url": codes.TIME_QUALITY_EXTENSION, "valueCode": quality[0]})
    resource: dict[str, Any] = {"resourceType": "Observation", "meta": meta, "extension": extensions}
    key = local_key_of(parts.device_key, mdc_code, parts.timestamp_token)
    identifier: str | None = None
    if ctx.patient is not None and parts.device_part is not None:
        identifier = observation_identifier_of(parts.device_part, ctx.patient, mdc_code, parts.timestamp_token,
                                               supplemental_types(reading, mdc_code))
        resource["identifier"] = [{"system": IDENTIFIER_SYSTEM, "value": identifier}]
    resource["status"] = parts.status
    if vital_signs:
        resource["category"] = [codes.CATEGORY_VITAL_SIGNS.concept(), codes.CATEGORY_PHD.concept()]
    else:
        resource["category"] = [codes.CATEGORY_PHD.concept()]
    resource["code"] = code
    if parts.subject_ref is not None:
        resource["subject"] = {"reference": parts.subject_ref}
    resource["effectiveDateTime"] = parts.effective
    resource["issued"] = parts.issued
    if quality:
        resource["note"] = [{"text": quality[1]}]
    resource["device"] = {"reference": parts.device_ref}
    return resource, key, identifier


def add_note(resource: dict[str, Any], text: str) -> None:
    resource.setdefault("note", []).append({"text": text})


def set_interpretation(resource: dict[str, Any], flag: str | None, extra: list[dict[str, Any]]) -> None:
    concepts = ([interpretation_concept(flag)] if flag else []) + extra
    if concepts:
        resource["interpretation"] = concepts


def supplemental_components(ctx: ObservationContext, mdc_code: str) -> list[dict[str, Any]]:
    """Supplemental-type components (68193 -> e.g. 150588 spot check), matching the identifier's suffix."""
    return [{"code": codes.SUPPLEMENTAL_TYPES_MDC.concept(),
             "valueCodeableConcept": _SUPPLEMENTAL_TYPE_CODES[code].concept()}
            for code in supplemental_types(ctx.reading, mdc_code)]


def derived_from(identifier: str | None, key: str) -> dict[str, Any]:
    """A logical reference to a sibling Observation of the same reading.

    By identifier, not by urn: a logical reference needs no entry in the same Bundle, so it survives the sync
    side splitting a reading's Observations across batches. Held drafts (no resident yet) point at the local
    key; they are rebuilt with `observations_for` once the resident is known.
    """
    if identifier is not None:
        return {"type": "Observation", "identifier": {"system": IDENTIFIER_SYSTEM, "value": identifier}}
    return {"type": "Observation", "identifier": {"system": codes.LOCAL_KEY_SYSTEM, "value": key}}


def bits_observation(ctx: ObservationContext, code: codes.Code, bits: list[tuple[str, str]],
                     parent: PendingObservation) -> PendingObservation:
    """A PhdBitsEnumerationObservation: one component per set bit (event bits: only set bits are reported)."""
    resource, key, identifier = base_observation(ctx, code.concept(), code.code, [codes.PROFILE_PHD_BITS],
                                                 vital_signs=False)
    resource["derivedFrom"] = [derived_from(parent.identifier, parent.local_key)]
    resource["component"] = [
        {"code": codes.Code(codes.ASN1_TO_HL7, bit_code, name).concept(text=name),
         "valueCodeableConcept": codes.BIT_SET.concept()}
        for bit_code, name in bits
    ]
    return PendingObservation(resource, key, identifier, code.code, code.code, None)
