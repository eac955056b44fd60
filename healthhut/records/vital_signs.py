"""Builders for the vital-signs kinds: blood pressure, SpO2 spot check, body temperature, weight scale.

Codes and profiles per reference ble-and-fhir.md §3.2-§3.5; interpretation bands per serial-and-sleep.md §5.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from healthhut.errors import ReadingError
from healthhut.readings import Metric, Quantity, StatusFlag, Unit
from healthhut.records import codes
from healthhut.records.interpretation import interpret, interpretation_concept, worst
from healthhut.records.observations import (
    ObservationContext,
    PendingObservation,
    absent_element,
    add_note,
    base_observation,
    bits_observation,
    check_plausible,
    measurement_state,
    quantity_element,
    require_unit,
    set_interpretation,
    supplemental_components,
    voided_by_status,
)

MMHG_PER_KPA = Decimal("7.50062")          # reference §1.5.1
KG_PER_LB = Decimal("0.45359237")
_TENTH = Decimal("0.1")

# BLE BPM status -> ASN1ToHL7 8410608.n (reference §3.5 table; names from the PHD ASN1ToHL7 code system).
_BP_STATUS_BITS: tuple[tuple[StatusFlag, str, str, str], ...] = (
    (StatusFlag.BODY_MOVEMENT, "8410608.0", "body-movement", "body movement"),
    (StatusFlag.CUFF_TOO_LOOSE, "8410608.1", "cuff-too-loose", "cuff too loose"),
    (StatusFlag.IRREGULAR_PULSE, "8410608.2", "irregular-pulse", "irregular pulse"),
    (StatusFlag.PULSE_ABOVE_RANGE, "8410608.3", "pulse-over-range-limit", "pulse above the device's range"),
    (StatusFlag.PULSE_BELOW_RANGE, "8410608.4", "pulse-under-range-limit", "pulse below the device's range"),
    (StatusFlag.IMPROPER_POSITION, "8410608.5", "improper-body-position", "improper measurement position"),
)

# PLX Device and Sensor Status, BLE bit n <-> 150604.(15 - n) (reference §3.5; names from ASN1ToHL7).
_PLX_DEVICE_BITS: tuple[tuple[StatusFlag, int, str], ...] = (
    (StatusFlag.EXTENDED_DISPLAY_UPDATE, 0, "device-extended-update"),
    (StatusFlag.EQUIPMENT_MALFUNCTION, 1, "device-equipment-malfunction"),
    (StatusFlag.SIGNAL_PROCESSING_IRREGULARITY, 2, "signal-processing-irregularity"),
    (StatusFlag.INADEQUATE_SIGNAL, 3, "signal-inadequate"),
    (StatusFlag.POOR_SIGNAL, 4, "signal-poor"),
    (StatusFlag.LOW_PERFUSION, 5, "signal-low-perfusion"),
    (StatusFlag.ERRATIC_SIGNAL, 6, "signal-erratic"),
    (StatusFlag.NON_PULSATILE_SIGNAL, 7, "signal-non-pulsatile"),
    (StatusFlag.QUESTIONABLE_PULSE, 8, "signal-pulse-questionable"),
    (StatusFlag.SIGNAL_ANALYSIS_ONGOING, 9, "signal-searching"),
    (StatusFlag.SENSOR_INTERFERENCE, 10, "sensor-interference"),
    (StatusFlag.SENSOR_UNCONNECTED, 11, "sensor-off"),
    (StatusFlag.UNKNOWN_SENSOR, 12, "sensor-unsupported"),
    (StatusFlag.SENSOR_DISPLACED, 13, "sensor-displaced"),
    (StatusFlag.SENSOR_MALFUNCTIONING, 14, "sensor-malfunction"),
    (StatusFlag.SENSOR_DISCONNECTED, 15, "sensor-disconnected"),
)


def plx_device_status_code(ble_bit: int) -> str:
    """The ASN1ToHL7 code of a PLX Device and Sensor Status bit: the 11073 bit order is reversed."""
    return f"{codes.PLX_DEVICE_STATUS_MDC.code}.{15 - ble_bit}"


def _to_mmhg(quantity: Quantity) -> tuple[Decimal | None, Quantity | None]:
    """(value in mm[Hg] or None, the original kPa quantity if converted)."""
    if quantity.value is None:
        return None, None
    if quantity.unit is Unit.KPA:
        return (quantity.value * MMHG_PER_KPA).quantize(_TENTH, rounding=ROUND_HALF_UP), quantity
    return quantity.value, None


def _numeric_value(resource: dict[str, Any], quantity: Quantity, value: Decimal | None, unit: str,
                   voided: codes.Code | None) -> bool:
    """Set valueQuantity or dataAbsentReason (never both); True if a value was set."""
    if voided is not None:
        resource.update(absent_element(voided))
        return False
    if value is None:
        assert quantity.absent is not None
        resource.update(absent_element(quantity.absent))
        return False
    resource["valueQuantity"] = quantity_element(value, unit)
    return True


def _single(ctx: ObservationContext, code: dict[str, Any], mdc: codes.Code, primary: codes.Code,
            profiles: list[str], quantity: Quantity, value: Decimal | None, unit: str,
            flag: str | None, voided: codes.Code | None) -> PendingObservation:
    resource, key, identifier = base_observation(ctx, code, mdc.code, profiles)
    has_value = _numeric_value(resource, quantity, value, unit, voided)
    _, extra = measurement_state(ctx.reading)
    flag = flag if has_value else None
    set_interpretation(resource, flag, extra)
    return PendingObservation(resource, key, identifier, primary.code, mdc.code, flag)


# --- blood pressure -------------------------------------------------------------------------------------


def _bp_component(coding: tuple[codes.Code, ...], quantity: Quantity, value: Decimal | None,
                  original: Quantity | None, flag: str | None, voided: codes.Code | None) -> dict[str, Any]:
    component: dict[str, Any] = {"code": codes.concept(*coding)}
    if original is not None and original.value is not None and voided is None:
        # The device measured in kPa: the value is sent in mm[Hg] (core bp profile) and the device's own
        # value travels in this project extension, so nothing of the original resolution is lost.
        component["extension"] = [{"url": codes.ORIGINAL_VALUE_EXTENSION,
                                   "valueQuantity": quantity_element(original.value, Unit.KPA)}]
    if _numeric_value(component, quantity, value, Unit.MMHG, voided) and flag:
        component["interpretation"] = [interpretation_concept(flag)]
    return component


def blood_pressure_observations(ctx: ObservationContext) -> list[PendingObservation]:
    """BP panel (+ heart rate if a pulse is present, + a status Observation if any BPM status bit is set).

    Interpretation sits on the systolic and diastolic components only; the panel has none of its own, and the
    draft's `interpretation` is the worse of the two (reference §5.1: "interpret each component separately").
    """
    reading = ctx.reading
    systolic_q = reading.values.get(Metric.SYSTOLIC)
    diastolic_q = reading.values.get(Metric.DIASTOLIC)
    if systolic_q is None or diastolic_q is None:
        raise ReadingError("a blood pressure reading needs systolic and diastolic values")
    mean_q = reading.values.get(Metric.MEAN_ARTERIAL)
    pressures = [q for q in (systolic_q, diastolic_q, mean_q) if q is not None]
    for q in pressures:
        require_unit(q, (Unit.MMHG, Unit.KPA), "a blood pressure value")
    voided = voided_by_status(reading)
    systolic, sys_original = _to_mmhg(systolic_q)
    diastolic, dia_original = _to_mmhg(diastolic_q)
    mean, mean_original = _to_mmhg(mean_q) if mean_q is not None else (None, None)
    if voided is None:
        for name, value, what in (("systolic", systolic, "systolic pressure"),
                                  ("diastolic", diastolic, "diastolic pressure"),
                                  ("mean_arterial", mean, "mean arterial pressure")):
            if value is not None:
                check_plausible(name, value, what)
        if systolic is not None and diastolic is not None and diastolic > systolic:
            raise ReadingError("diastolic pressure above systolic pressure")

    sys_flag = interpret(Metric.SYSTOLIC, systolic, ctx.ranges) if systolic is not None else None
    dia_flag = interpret(Metric.DIASTOLIC, diastolic, ctx.ranges) if diastolic is not None else None
    if voided is not None:
        sys_flag = dia_flag = None
    components = [
        _bp_component((codes.SYSTOLIC_LOINC, codes.SYSTOLIC_MDC), systolic_q, systolic, sys_original,
                      sys_flag, voided),
        _bp_component((codes.DIASTOLIC_LOINC, codes.DIASTOLIC_MDC), diastolic_q, diastolic, dia_original,
                      dia_flag, voided),
    ]
    if mean_q is not None:
        # Mean: MDC first, LOINC 8478-0 second (the PHD IG example carries only MDC; reference §3.2).
        components.append(_bp_component((codes.MEAN_MDC, codes.MEAN_LOINC), mean_q, mean, mean_original, None,
                                        voided))
    code = codes.concept(codes.BP_PANEL_LOINC, codes.BP_PANEL_MDC, text="Blood pressure")
    panel_resource, key, identifier = base_observation(
        ctx, code, codes.BP_PANEL_MDC.code, [codes.PROFILE_BP, codes.PROFILE_PHD_COMPOUND])
    _, extra = measurement_state(reading)
    set_interpretation(panel_resource, None, extra)
    status = reading.status
    set_bits = [(bit, name, words) for flag, bit, name, words in _BP_STATUS_BITS if flag in status] if status else []
    if set_bits:
        # Doctors' viewers often ignore bits Observations: say it in words on the panel too (reference §3.5).
        add_note(panel_resource, "Device reported: " + ", ".join(words for _, _, words in set_bits) + ".")
    panel_resource["component"] = components
    panel = PendingObservation(panel_resource, key, identifier, codes.BP_PANEL_LOINC.code,
                               codes.BP_PANEL_MDC.code, worst((sys_flag, dia_flag)))
    result = [panel]

    pulse_q = reading.values.get(Metric.PULSE_RATE)
    if pulse_q is not None:
        result.append(_pulse(ctx, pulse_q, codes.PULSE_NONINV_MDC, voided))
    if set_bits:
        result.append(bits_observation(ctx, codes.BP_STATUS_MDC, [(bit, name) for bit, name, _ in set_bits],
                                       panel))
    return result


def _pulse(ctx: ObservationContext, pulse_q: Quantity, mdc: codes.Code,
           voided: codes.Code | None) -> PendingObservation:
    require_unit(pulse_q, (Unit.PER_MINUTE,), "a pulse rate")
    if pulse_q.value is not None and voided is None:
        check_plausible("pulse_rate", pulse_q.value, "pulse rate")
    flag = interpret(Metric.PULSE_RATE, pulse_q.value, ctx.ranges) if pulse_q.value is not None else None
    code = codes.concept(codes.HEART_RATE_LOINC, mdc, text="Pulse rate")
    pending = _single(ctx, code, mdc, codes.HEART_RATE_LOINC, [codes.PROFILE_HEART_RATE, codes.PROFILE_PHD_NUMERIC],
                      pulse_q, pulse_q.value, Unit.PER_MINUTE, flag, voided)
    _append_components(pending, ctx, mdc.code)
    return pending


def _append_components(pending: PendingObservation, ctx: ObservationContext, mdc_code: str) -> None:
    extra = supplemental_components(ctx, mdc_code)
    if extra:
        pending.resource.setdefault("component", []).extend(extra)


# --- SpO2 ------------------------------------------------------------------------------------------------


def spo2_observations(ctx: ObservationContext) -> list[PendingObservation]:
    """SpO2 + pulse rate (spot check, supplemental type 150588), + a 150604 bits Observation for any device
    and sensor status flag. The bits Observation derives from the SpO2 Observation (or the pulse one)."""
    reading = ctx.reading
    spo2_q = reading.values.get(Metric.SPO2)
    pulse_q = reading.values.get(Metric.PULSE_RATE)
    if spo2_q is None and pulse_q is None:
        raise ReadingError("an SpO2 reading has neither an SpO2 nor a pulse value")
    voided = voided_by_status(reading)
    result: list[PendingObservation] = []
    if spo2_q is not None:
        require_unit(spo2_q, (Unit.PERCENT,), "an SpO2 value")
        if spo2_q.value is not None and voided is None:
            check_plausible("spo2", spo2_q.value, "SpO2")
        flag = interpret(Metric.SPO2, spo2_q.value, ctx.ranges) if spo2_q.value is not None else None
        code = codes.concept(codes.SPO2_LOINC, codes.SPO2_PULSE_OX_LOINC, codes.SPO2_MDC, text="SpO2")
        pending = _single(ctx, code, codes.SPO2_MDC, codes.SPO2_LOINC,
                          [codes.PROFILE_OXYGEN_SAT, codes.PROFILE_PHD_NUMERIC], spo2_q, spo2_q.value,
                          Unit.PERCENT, flag, voided)
        _append_components(pending, ctx, codes.SPO2_MDC.code)
        result.append(pending)
    if pulse_q is not None:
        result.append(_pulse(ctx, pulse_q, codes.PULSE_OXIM_MDC, voided))
    bits = [(plx_device_status_code(bit), name) for flag_, bit, name in _PLX_DEVICE_BITS
            if flag_ in reading.status]
    if bits:
        result.append(bits_observation(ctx, codes.PLX_DEVICE_STATUS_MDC, bits, result[0]))
    return result


# --- body temperature ------------------------------------------------------------------------------------


def _celsius(quantity: Quantity, value: Decimal) -> Decimal:
    return (value - 32) * 5 / 9 if quantity.unit is Unit.FAHRENHEIT else value


def body_temperature_observations(ctx: ObservationContext) -> list[PendingObservation]:
    """One body temperature Observation in the device's unit (Cel or [degF]); bodySite from body_site."""
    reading = ctx.reading
    temp_q = reading.values.get(Metric.BODY_TEMPERATURE)
    if temp_q is None:
        raise ReadingError("a body temperature reading has no temperature value")
    require_unit(temp_q, (Unit.CELSIUS, Unit.FAHRENHEIT), "a body temperature")
    voided = voided_by_status(reading)
    flag = None
    if temp_q.value is not None:
        celsius = _celsius(temp_q, temp_q.value)
        if voided is None:
            check_plausible("body_temperature", celsius, "body temperature")
        flag = interpret(Metric.BODY_TEMPERATURE, celsius, ctx.ranges)
    code = codes.concept(codes.BODY_TEMP_LOINC, codes.BODY_TEMP_MDC, text="Body temperature")
    pending = _single(ctx, code, codes.BODY_TEMP_MDC, codes.BODY_TEMP_LOINC,
                      [codes.PROFILE_BODY_TEMP, codes.PROFILE_PHD_NUMERIC], temp_q, temp_q.value, temp_q.unit,
                      flag, voided)
    site = (reading.body_site or "").strip().lower()
    if site and site != "body":    # "body (general)" names no site
        known = codes.BODY_SITE_SNOMED.get(site)
        pending.resource["bodySite"] = known.concept(text=site) if known else {"text": site}
    return [pending]


# --- weight scale ----------------------------------------------------------------------------------------


def body_weight_observations(ctx: ObservationContext) -> list[PendingObservation]:
    """Weight, and height and BMI when the scale sent them: one Observation each.

    Height in metres is sent in cm (the core bodyheight profile's units are cm and [in_i]); 1.780 m -> 178.0.
    Weight, height and BMI get no interpretation flag (no bands in the reference).
    """
    reading = ctx.reading
    voided = voided_by_status(reading)
    result: list[PendingObservation] = []
    weight_q = reading.values.get(Metric.BODY_WEIGHT)
    height_q = reading.values.get(Metric.BODY_HEIGHT)
    bmi_q = reading.values.get(Metric.BMI)
    if weight_q is None and height_q is None and bmi_q is None:
        raise ReadingError("a weight reading has no weight, height or BMI value")
    if weight_q is not None:
        require_unit(weight_q, (Unit.KILOGRAM, Unit.POUND), "a body weight")
        if weight_q.value is not None and voided is None:
            kg = weight_q.value * KG_PER_LB if weight_q.unit is Unit.POUND else weight_q.value
            check_plausible("body_weight", kg, "body weight")
        code = codes.concept(codes.BODY_WEIGHT_LOINC, codes.BODY_WEIGHT_MDC, text="Body weight")
        result.append(_single(ctx, code, codes.BODY_WEIGHT_MDC, codes.BODY_WEIGHT_LOINC,
                              [codes.PROFILE_BODY_WEIGHT, codes.PROFILE_PHD_NUMERIC], weight_q, weight_q.value,
                              weight_q.unit, None, voided))
    if height_q is not None:
        require_unit(height_q, (Unit.METRE, Unit.INCH), "a body height")
        value, unit = height_q.value, str(height_q.unit)
        if value is not None and height_q.unit is Unit.METRE:
            if voided is None:
                check_plausible("body_height", value, "body height")
            value, unit = value.scaleb(2), "cm"
        elif value is not None and voided is None:
            check_plausible("body_height", value * Decimal("0.0254"), "body height")
        code = codes.concept(codes.BODY_HEIGHT_LOINC, codes.BODY_HEIGHT_MDC, text="Body height")
        result.append(_single(ctx, code, codes.BODY_HEIGHT_MDC, codes.BODY_HEIGHT_LOINC,
                              [codes.PROFILE_BODY_HEIGHT, codes.PROFILE_PHD_NUMERIC], height_q, value, unit,
                              None, voided))
    if bmi_q is not None:
        require_unit(bmi_q, (Unit.KG_PER_M2,), "a BMI")
        if bmi_q.value is not None and voided is None:
            check_plausible("bmi", bmi_q.value, "BMI")
        code = codes.concept(codes.BMI_LOINC, codes.BMI_MDC, text="Body mass index")
        result.append(_single(ctx, code, codes.BMI_MDC, codes.BMI_LOINC,
                              [codes.PROFILE_BMI, codes.PROFILE_PHD_NUMERIC], bmi_q, bmi_q.value, Unit.KG_PER_M2,
                              None, voided))
    return result
