"""Device (PhdDevice), gateway (PhgDevice) and Patient resources as JSON-ready dicts (reference §3.4).

Pure functions; they do not validate (tests do). Their urns come from `references`, so an Observation's
`device`, gateway extension and `subject` point at exactly these resources in a transaction Bundle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from healthhut import __version__
from healthhut.readings import DeviceIdentity, ReadingKind
from healthhut.records import codes
from healthhut.records.drafts import PatientRef
from healthhut.records.identity import bluetooth_address_hex, canonical_system_id

_SPECIALIZATIONS: dict[ReadingKind, codes.Code] = {
    ReadingKind.BLOOD_PRESSURE: codes.SPEC_PROFILE_BP,
    ReadingKind.SPO2: codes.SPEC_PROFILE_PULS_OXIM,
    ReadingKind.PULSE_RATE: codes.SPEC_PROFILE_PULS_OXIM,
    ReadingKind.OXIMETRY_SERIES: codes.SPEC_PROFILE_PULS_OXIM,
    ReadingKind.BODY_TEMPERATURE: codes.SPEC_PROFILE_TEMP,
    ReadingKind.BODY_WEIGHT: codes.SPEC_PROFILE_SCALE,
}


def _pairs(hex_digits: str) -> str:
    return "-".join(hex_digits[i:i + 2] for i in range(0, len(hex_digits), 2))


def _text(value: str | None) -> str | None:
    # DIS strings arrive padded with NULs or spaces; an empty FHIR string is invalid.
    if value is None:
        return None
    cleaned = value.strip().strip("\x00").strip()
    return cleaned or None


def device_identifiers(device: DeviceIdentity) -> list[dict[str, Any]]:
    """SYSID (canonical EUI-64 order, dash-joined pairs) and BTMAC; a project device-key id if neither."""
    identifiers: list[dict[str, Any]] = []
    if device.system_id:
        identifiers.append({"type": codes.DEVICE_ID_SYSID.concept(), "system": codes.SYSTEM_ID_SYSTEM,
                            "value": _pairs(canonical_system_id(device.system_id))})
    address = bluetooth_address_hex(device)
    if address:
        identifiers.append({"type": codes.DEVICE_ID_BTMAC.concept(), "system": codes.BLUETOOTH_ADDRESS_SYSTEM,
                            "value": _pairs(address)})
    if not identifiers:
        identifiers.append({"system": codes.DEVICE_KEY_SYSTEM, "value": device.key})
    return identifiers


def device_resource(device: DeviceIdentity, kinds: Iterable[ReadingKind] = ()) -> dict[str, Any]:
    """A PhdDevice. `kinds` (what the device measures) fills `specialization`; without it none is given."""
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "meta": {"profile": [codes.PROFILE_PHD_DEVICE]},
        "identifier": device_identifiers(device),
    }
    manufacturer, model, serial, name = (_text(device.manufacturer), _text(device.model),
                                         _text(device.serial), _text(device.name))
    if manufacturer:
        resource["manufacturer"] = manufacturer
    if serial:
        resource["serialNumber"] = serial
    names = []
    if name:
        names.append({"name": name, "type": "user-friendly-name"})
    if model:
        names.append({"name": model, "type": "model-name"})
    if names:
        resource["deviceName"] = names
    if model:
        resource["modelNumber"] = model
    resource["type"] = codes.MDS_SIMPLE.concept()
    specializations = []
    for code in dict.fromkeys(_SPECIALIZATIONS[k] for k in kinds if k in _SPECIALIZATIONS):
        specializations.append({"systemType": code.concept(), "version": "1"})
    if specializations:
        resource["specialization"] = specializations
    versions = [(codes.VERSION_HARDWARE, _text(device.hardware)), (codes.VERSION_SOFTWARE, _text(device.software)),
                (codes.VERSION_FIRMWARE, _text(device.firmware))]
    version_elements = [{"type": code.concept(), "value": value} for code, value in versions if value]
    if version_elements:
        resource["version"] = version_elements
    return resource


def gateway_resource(site_id: str, site_name: str | None = None) -> dict[str, Any]:
    """The PhgDevice of this hut's gateway, identified by site id (we have no EUI-64 for the box itself).

    Time sync is declared as NTPv4: the gateway's clock is the reference every device clock is corrected to,
    and the deployment runs NTP (systemd-timesyncd); if a hut has no network time this is wrong for it.
    """
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "meta": {"profile": [codes.PROFILE_PHG_DEVICE]},
        "identifier": [{"system": codes.GATEWAY_SYSTEM, "value": site_id}],
        "manufacturer": "healthhut",
    }
    name = _text(site_name)
    if name:
        resource["deviceName"] = [{"name": name, "type": "user-friendly-name"}]
    resource["type"] = codes.MDS_GATEWAY.concept()
    resource["version"] = [{"type": codes.VERSION_SOFTWARE.concept(), "value": __version__}]
    resource["property"] = [{"type": codes.TIME_SYNC_PROTOCOL.concept(),
                             "valueCode": [codes.TIME_SYNC_NTPV4.concept()]}]
    return resource


def patient_resource(patient: PatientRef) -> dict[str, Any]:
    """A Patient with its identifier only: names and other details stay with the platform."""
    return {"resourceType": "Patient", "identifier": [{"system": patient.system, "value": patient.value}]}
