"""The one place Observation identifiers are built: PHD IG STU2 conditional-create values and local keys.

Pinned choices (reference ble-and-fhir.md §3.7, §1.9; change none of them once records have been sent — the
server de-duplicates on the exact string):

* Variant: PHD IG **STU2** (2.0.0): `identifier.system` = IDENTIFIER_SYSTEM, value = dash-joined
  device, patient value, patient system, MDC type code, device timestamp token, then supplemental-type codes.
* Device part: the System ID as 16 upper-case hex digits in **canonical EUI-64 order** (00:1C:05:FF:E8:74 ->
  001C05FFFEFFE874; the IG's own Nonin example uses wire order, we do not); without a System ID, the Bluetooth
  address as 12 upper-case hex digits; without either (serial devices), model-serial, else
  `DeviceIdentity.key` (the port path).
* Timestamp: the **device's own** wall clock (never the corrected time) as seconds since 2000-01-01T00:00:00,
  no `+N` offset suffix (the Reading does not tell us whether the device itself reported an offset).
* Supplemental types: an SpO2 reading is a spot check (MDC 150588, the `observations_for` mapping), so its
  SpO2 and pulse identifiers end in `-150588`, as rule 6 of §3.7 asks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType

from healthhut.errors import ReadingError
from healthhut.readings import DeviceIdentity, Reading, ReadingKind, TimeSource, Transport
from healthhut.records import codes
from healthhut.records.drafts import PatientRef

IDENTIFIER_SYSTEM = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation"

_EPOCH_2000 = datetime(2000, 1, 1)
_EPOCH_2000_UTC = datetime(2000, 1, 1, tzinfo=UTC)
_SEPARATORS = re.compile(r"[-:. ]")
_HEX = re.compile(r"[0-9A-F]+")

# (kind, MDC type code) -> supplemental-type MDC codes appended to the identifier (§3.7 rule 6).
_SUPPLEMENTAL_TYPES: Mapping[tuple[ReadingKind, str], tuple[str, ...]] = MappingProxyType({
    (ReadingKind.SPO2, codes.SPO2_MDC.code): (codes.MODALITY_SPOT_MDC.code,),
    (ReadingKind.SPO2, codes.PULSE_OXIM_MDC.code): (codes.MODALITY_SPOT_MDC.code,),
})


# The two regex passes below run for every Observation's identifier and every Device resource, on the same
# handful of ids: remembered per id text (str -> str, immutable; a bad id raises and is not remembered).
@lru_cache(maxsize=1024)
def canonical_system_id(system_id: str) -> str:
    """16 upper-case hex digits, separators removed; ReadingError if it is not an EUI-64."""
    value = _SEPARATORS.sub("", system_id).upper()
    if len(value) != 16 or not _HEX.fullmatch(value):
        raise ReadingError("a device system id must be 16 hex digits (EUI-64)")
    return value


def bluetooth_address_hex(device: DeviceIdentity) -> str | None:
    """The device's Bluetooth address as 12 upper-case hex digits, or None if it has none (or not a MAC)."""
    if device.transport is not Transport.BLE or not device.address:
        return None
    return _mac_hex(device.address)


@lru_cache(maxsize=1024)
def _mac_hex(address: str) -> str | None:
    value = _SEPARATORS.sub("", address).upper()
    # CoreBluetooth hands out per-host UUIDs instead of addresses: those are not a device identity.
    if len(value) != 12 or not _HEX.fullmatch(value):
        return None
    return value


def device_part(device: DeviceIdentity) -> str:
    """The device part of an identifier: System ID, else Bluetooth address, else the local device key."""
    if device.system_id:
        return canonical_system_id(device.system_id)
    address = bluetooth_address_hex(device)
    if address:
        return address
    # Serial devices: model + serial number when known (a port path is not an identity: the same oximeter
    # may come back on another port), else the local key (the port path), stable enough on one hut.
    if device.serial:
        return f"{device.model or 'device'}-{device.serial}"
    return device.key


def _seconds_token(delta_seconds: Decimal) -> str:
    if delta_seconds == delta_seconds.to_integral_value():
        return str(int(delta_seconds))
    return format(delta_seconds.normalize(), "f")


def device_timestamp_token(reading: Reading) -> str:
    """The timestamp part of identifiers and local keys.

    * Device clock (TimeSource.DEVICE): the device's wall-clock time (`measured_at` with its tzinfo ignored,
      i.e. exactly what the device displayed), as seconds since 2000-01-01T00:00:00, sub-second digits only
      if the device gave them. The gateway's clock correction never enters: a re-download of the same record
      after the clock was fixed must map to the same identifier.
    * No usable device time (TimeSource.RECEIPT or UNKNOWN): `seq<N>` from the device's record sequence
      number when it has one, else the gateway's receive time as seconds since 2000-01-01T00:00:00Z (UTC, so
      a daylight-saving change cannot produce duplicates), with milliseconds if any.
    """
    if reading.time_source is TimeSource.DEVICE and reading.measured_at is not None:
        wall = reading.measured_at.replace(tzinfo=None)
        delta = wall - _EPOCH_2000
        if not delta.microseconds:   # whole seconds, the usual case: the same digits without a Decimal
            return str(delta.days * 86_400 + delta.seconds)
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return _seconds_token(Decimal(micros).scaleb(-6))
    if reading.sequence is not None:
        return f"seq{reading.sequence}"
    delta = reading.received_at - _EPOCH_2000_UTC
    millis = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return _seconds_token(Decimal(millis).scaleb(-3))


def supplemental_types(reading: Reading, mdc_code: str) -> tuple[str, ...]:
    """The supplemental-type MDC codes this reading's Observation of `mdc_code` carries (may be empty)."""
    return _SUPPLEMENTAL_TYPES.get((reading.kind, mdc_code), ())


def local_key(reading: Reading, mdc_code: str) -> str:
    """Device key + MDC code + timestamp token: unique per measurement without knowing the resident."""
    return local_key_of(reading.device.key, mdc_code, device_timestamp_token(reading))


def local_key_of(device_key: str, mdc_code: str, timestamp_token: str) -> str:
    """`local_key` from its parts, for a builder that works out the reading's parts once for all its
    Observations (the timestamp token is the dearest part)."""
    return f"{device_key}-{mdc_code}-{timestamp_token}"


def observation_identifier(reading: Reading, patient: PatientRef, mdc_code: str) -> str:
    """The PHD IG STU2 conditional-create identifier value (system: IDENTIFIER_SYSTEM). Never log it."""
    return observation_identifier_of(device_part(reading.device), patient, mdc_code,
                                     device_timestamp_token(reading), supplemental_types(reading, mdc_code))


def observation_identifier_of(device: str, patient: PatientRef, mdc_code: str, timestamp_token: str,
                              supplemental: tuple[str, ...]) -> str:
    """`observation_identifier` from its parts (`device_part`, `device_timestamp_token`,
    `supplemental_types`), for a builder that works the reading's parts out once. Never log it."""
    return "-".join((device, patient.value, patient.system, mdc_code, timestamp_token, *supplemental))


def identifier_element(reading: Reading, patient: PatientRef, mdc_code: str) -> dict[str, str]:
    """The `Observation.identifier` entry for this Observation."""
    return {"system": IDENTIFIER_SYSTEM, "value": observation_identifier(reading, patient, mdc_code)}


# A report grouping a reading's Observations (a night's DiagnosticReport) is not a PHD Observation: its
# identifier lives in a project system, built like the Observation ones with the report's type code in the
# place of the MDC code. Pinned like the choices above: the server de-duplicates on the exact string.
REPORT_IDENTIFIER_SYSTEM = f"{codes.PROJECT_BASE}/sid/report"


def report_identifier(reading: Reading, patient: PatientRef, type_code: str) -> str:
    """Device, patient value, patient system, report type code, device timestamp token. Never log it."""
    return "-".join([device_part(reading.device), patient.value, patient.system, type_code,
                     device_timestamp_token(reading)])


def report_identifier_element(reading: Reading, patient: PatientRef, type_code: str) -> dict[str, str]:
    """The `DiagnosticReport.identifier` entry (conditional-create key) for this reading's report."""
    return {"system": REPORT_IDENTIFIER_SYSTEM, "value": report_identifier(reading, patient, type_code)}
