"""Every code system, code, unit and profile URL the FHIR normaliser writes, as data with its source.

Sources are abbreviated: REF = /work/shared/reference/ble-and-fhir.md (section), PHD = the HL7 Personal Health
Device IG source (github.com/HL7/phd, input/fsh and input/examples), CORE = FHIR R4 core pages. A change of a
code here changes what the district server receives: keep the source next to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from healthhut.readings import Unit

# --- code systems -------------------------------------------------------------------------------------------
LOINC = "http://loinc.org"                                           # REF §3.2
MDC = "urn:iso:std:iso:11073:10101"                                  # REF §3.2
UCUM = "http://unitsofmeasure.org"                                   # REF §3.2
SNOMED = "http://snomed.info/sct"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"   # REF §3.2
PHD_CATEGORY = "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories"      # REF §3.2
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"      # REF §1.3
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"  # serial-and-sleep §5.1
POCD_MEASUREMENT_STATUS = "http://hl7.org/fhir/uv/pocd/CodeSystem/measurement-status"    # REF §3.5
V3_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"                 # REF §3.5 (HTEST)
# REF §3.5 names http://terminology.hl7.org/CodeSystem/ASN1ToHL7; the PHD IG source (CodeSystem.ASN1ToHL7.fsh
# and the bpm-status example) defines and uses the IG-local URL below, which we follow.
ASN1_TO_HL7 = "http://hl7.org/fhir/uv/phd/CodeSystem/ASN1ToHL7"
V2_YES_NO = "http://terminology.hl7.org/CodeSystem/v2-0136"          # PHD PhdBitsEnumerationObservation.fsh
CONTINUA_DEVICE_IDENTIFIERS = "http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers"  # REF §3.4
SYSTEM_ID_SYSTEM = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"    # REF §3.4 (EUI-64 system id)
BLUETOOTH_ADDRESS_SYSTEM = "http://hl7.org/fhir/sid/eui-48/bluetooth"  # REF §3.4

# --- project-owned URLs (no external authority; keep stable, they are in stored records) ---------------------
PROJECT_BASE = "https://healthhut.example/fhir"
TIME_QUALITY_EXTENSION = f"{PROJECT_BASE}/StructureDefinition/time-quality"
ORIGINAL_VALUE_EXTENSION = f"{PROJECT_BASE}/StructureDefinition/original-device-value"
LOCAL_KEY_SYSTEM = f"{PROJECT_BASE}/sid/local-observation-key"
GATEWAY_SYSTEM = f"{PROJECT_BASE}/sid/gateway"
DEVICE_KEY_SYSTEM = f"{PROJECT_BASE}/sid/device-key"

# --- extensions and profiles -----------------------------------------------------------------------------------
GATEWAY_DEVICE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"  # REF §3.4
PHD_PROFILE = "http://hl7.org/fhir/uv/phd/StructureDefinition/"
PROFILE_PHD_NUMERIC = PHD_PROFILE + "PhdNumericObservation"
PROFILE_PHD_COMPOUND = PHD_PROFILE + "PhdCompoundNumericObservation"
PROFILE_PHD_BITS = PHD_PROFILE + "PhdBitsEnumerationObservation"
PROFILE_PHD_DEVICE = PHD_PROFILE + "PhdDevice"
PROFILE_PHG_DEVICE = PHD_PROFILE + "PhgDevice"
CORE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"            # REF §3.2 table, last column
PROFILE_BP = CORE_PROFILE + "bp"
PROFILE_HEART_RATE = CORE_PROFILE + "heartrate"
PROFILE_OXYGEN_SAT = CORE_PROFILE + "oxygensat"
PROFILE_BODY_TEMP = CORE_PROFILE + "bodytemp"
PROFILE_BODY_WEIGHT = CORE_PROFILE + "bodyweight"
PROFILE_BODY_HEIGHT = CORE_PROFILE + "bodyheight"
PROFILE_BMI = CORE_PROFILE + "bmi"


@dataclass(frozen=True, slots=True)
class Code:
    """One coding: system, code, optional display."""

    system: str
    code: str
    display: str | None = None

    # coding() and concept() run a dozen times per Observation: one dict literal each, no item added after.
    def coding(self) -> dict[str, Any]:
        if self.display:
            return {"system": self.system, "code": self.code, "display": self.display}
        return {"system": self.system, "code": self.code}

    def concept(self, text: str | None = None) -> dict[str, Any]:
        if text:
            return {"coding": [self.coding()], "text": text}
        return {"coding": [self.coding()]}


def concept(*codes: Code, text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept holding several codings of one meaning (LOINC + MDC)."""
    codings = [code.coding() for code in codes]
    if text:
        return {"coding": codings, "text": text}
    return {"coding": codings}


# --- categories (REF §3.2) ---------------------------------------------------------------------------------
CATEGORY_VITAL_SIGNS = Code(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")
# STU2 code per REF §3.2 and the brief; PHD IG 1.x drafts used "phd-observation".
CATEGORY_PHD = Code(PHD_CATEGORY, "phd")

# --- observation codes (REF §3.2 table; MDC displays are the reference-ID names) ----------------------------
BP_PANEL_LOINC = Code(LOINC, "85354-9", "Blood pressure panel with all children optional")
BP_PANEL_MDC = Code(MDC, "150020", "MDC_PRESS_BLD_NONINV")
SYSTOLIC_LOINC = Code(LOINC, "8480-6", "Systolic blood pressure")
SYSTOLIC_MDC = Code(MDC, "150021", "MDC_PRESS_BLD_NONINV_SYS")
DIASTOLIC_LOINC = Code(LOINC, "8462-4", "Diastolic blood pressure")
DIASTOLIC_MDC = Code(MDC, "150022", "MDC_PRESS_BLD_NONINV_DIA")
MEAN_MDC = Code(MDC, "150023", "MDC_PRESS_BLD_NONINV_MEAN")
MEAN_LOINC = Code(LOINC, "8478-0", "Mean blood pressure")    # REF §3.2: [I] CardX IG; optional
HEART_RATE_LOINC = Code(LOINC, "8867-4", "Heart rate")
PULSE_NONINV_MDC = Code(MDC, "149546", "MDC_PULS_RATE_NON_INV")      # pulse from a BP cuff
PULSE_OXIM_MDC = Code(MDC, "149530", "MDC_PULS_OXIM_PULS_RATE")      # pulse from an oximeter
SPO2_LOINC = Code(LOINC, "2708-6", "Oxygen saturation in Arterial blood")
SPO2_PULSE_OX_LOINC = Code(LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")
SPO2_MDC = Code(MDC, "150456", "MDC_PULS_OXIM_SAT_O2")
BODY_TEMP_LOINC = Code(LOINC, "8310-5", "Body temperature")
BODY_TEMP_MDC = Code(MDC, "150364", "MDC_TEMP_BODY")
BODY_WEIGHT_LOINC = Code(LOINC, "29463-7", "Body weight")
BODY_WEIGHT_MDC = Code(MDC, "188736", "MDC_MASS_BODY_ACTUAL")
BODY_HEIGHT_LOINC = Code(LOINC, "8302-2", "Body height")
BODY_HEIGHT_MDC = Code(MDC, "188740", "MDC_LEN_BODY_ACTUAL")
BMI_LOINC = Code(LOINC, "39156-5", "Body mass index (BMI) [Ratio]")
BMI_MDC = Code(MDC, "188752", "MDC_RATIO_MASS_BODY_LEN_SQ")

# Supplemental types (PHD numeric-spotnumeric example): component code 68193 with value 150588 (spot check).
SUPPLEMENTAL_TYPES_MDC = Code(MDC, "68193", "MDC_ATTR_SUPPLEMENTAL_TYPES")
MODALITY_SPOT_MDC = Code(MDC, "150588", "MDC_MODALITY_SPOT")

# Status observations (REF §3.5; bit names from PHD CodeSystem.ASN1ToHL7.fsh).
BP_STATUS_MDC = Code(MDC, "8410608", "MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS")
PLX_DEVICE_STATUS_MDC = Code(MDC, "150604", "MDC_PULS_OXIM_DEV_STATUS")
BIT_SET = Code(V2_YES_NO, "Y", "Yes")

# --- data-absent-reason (REF §1.3 table, §3.5) -----------------------------------------------------------
DAR_NOT_A_NUMBER = Code(DATA_ABSENT_REASON, "not-a-number", "Not a Number (NaN)")
DAR_ERROR = Code(DATA_ABSENT_REASON, "error", "Error")
DAR_POSITIVE_INFINITY = Code(DATA_ABSENT_REASON, "positive-infinity", "Positive Infinity (PINF)")
DAR_NEGATIVE_INFINITY = Code(DATA_ABSENT_REASON, "negative-infinity", "Negative Infinity (NINF)")
DAR_NOT_PERFORMED = Code(DATA_ABSENT_REASON, "not-performed", "Not Performed")
DAR_TEMP_UNKNOWN = Code(DATA_ABSENT_REASON, "temp-unknown", "Temporarily Unknown")

# --- interpretation ------------------------------------------------------------------------------------------
INTERPRETATION_DISPLAY: Mapping[str, str] = MappingProxyType(
    {"N": "Normal", "L": "Low", "H": "High", "LL": "Critical low", "HH": "Critical high"})
POCD_QUESTIONABLE = Code(POCD_MEASUREMENT_STATUS, "questionable", "Questionable")          # REF §3.5
POCD_EARLY_INDICATION = Code(POCD_MEASUREMENT_STATUS, "early-indication", "Early indication")
POCD_CALIBRATION_ONGOING = Code(POCD_MEASUREMENT_STATUS, "calibration-ongoing", "Calibration ongoing")
SECURITY_HTEST = Code(V3_ACT_REASON, "HTEST", "test health data")                       # REF §3.5

# --- devices (REF §3.4) ----------------------------------------------------------------------------------
DEVICE_ID_SYSID = Code(CONTINUA_DEVICE_IDENTIFIERS, "SYSID", "IEEE 11073 System Identifier")
DEVICE_ID_BTMAC = Code(CONTINUA_DEVICE_IDENTIFIERS, "BTMAC", "Bluetooth MAC address")
MDS_SIMPLE = Code(MDC, "65573", "MDC_MOC_VMS_MDS_SIMP")
MDS_GATEWAY = Code(MDC, "531981", "MDC_MOC_VMS_MDS_AHD")
SPEC_PROFILE_BP = Code(MDC, "528391", "MDC_DEV_SPEC_PROFILE_BP")
SPEC_PROFILE_PULS_OXIM = Code(MDC, "528388", "MDC_DEV_SPEC_PROFILE_PULS_OXIM")
SPEC_PROFILE_TEMP = Code(MDC, "528392", "MDC_DEV_SPEC_PROFILE_TEMP")      # REF: [I]
SPEC_PROFILE_SCALE = Code(MDC, "528399", "MDC_DEV_SPEC_PROFILE_SCALE")    # REF: [I]
VERSION_HARDWARE = Code(MDC, "531974", "MDC_ID_PROD_SPEC_HW")
VERSION_SOFTWARE = Code(MDC, "531975", "MDC_ID_PROD_SPEC_SW")
VERSION_FIRMWARE = Code(MDC, "531976", "MDC_ID_PROD_SPEC_FW")
TIME_SYNC_PROTOCOL = Code(MDC, "68220", "MDC_TIME_SYNC_PROTOCOL")
TIME_SYNC_NTPV4 = Code(MDC, "532226", "MDC_TIME_SYNC_NTPV4")

# --- units: UCUM code -> human-readable unit string -------------------------------------------------------
UNIT_DISPLAY: Mapping[str, str] = MappingProxyType({
    Unit.MMHG: "mmHg", Unit.KPA: "kPa", Unit.PER_MINUTE: "beats/minute", Unit.PERCENT: "%",
    Unit.CELSIUS: "°C", Unit.FAHRENHEIT: "°F", Unit.KILOGRAM: "kg", Unit.POUND: "lb", Unit.METRE: "m",
    "cm": "cm", Unit.INCH: "in", Unit.KG_PER_M2: "kg/m2",
})

# Temperature type -> body site. SNOMED codes only where we are sure of them; the rest travel as text.
BODY_SITE_SNOMED: Mapping[str, Code] = MappingProxyType({
    "ear": Code(SNOMED, "117590005", "Ear structure"),
    "rectum": Code(SNOMED, "34402009", "Rectum structure"),
    "finger": Code(SNOMED, "7569003", "Finger structure"),
    "toe": Code(SNOMED, "29707007", "Toe structure"),
})
