"""Listing rows for stored records, shared by the `records` views and the CSV export."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from healthhut.records.queries import ObservationView

TIME_QUALITY_URL = "https://healthhut.example/fhir/StructureDefinition/time-quality"


def _quantity_text(element: dict[str, Any]) -> dict[str, Any]:
    quantity = element.get("valueQuantity")
    if quantity is not None:
        return {"value": str(quantity.get("value")), "unit": quantity.get("code") or quantity.get("unit")}
    if "dataAbsentReason" in element:
        return {"absent": element["dataAbsentReason"]["coding"][0]["code"]}
    if "valueSampledData" in element:
        return {"sampled": element["valueSampledData"].get("dimensions", 1)}
    if "conclusion" in element:  # a DiagnosticReport (a night's): no value of its own, its conclusion says it
        return {"conclusion": element["conclusion"]}
    return {}


def observation_entry(view: ObservationView) -> dict[str, Any]:
    """A listing row: what, when, the value(s), the flag, where it came from and whether it was delivered."""
    resource = json.loads(view.json, parse_float=Decimal)
    values: list[dict[str, Any]] = []
    main = _quantity_text(resource)
    if main:
        values.append({"code": view.code, **main})
    for component in resource.get("component", []):
        shown = _quantity_text(component)
        if shown:
            values.append({"code": component["code"]["coding"][0]["code"], **shown})
    quality = next((ext.get("valueCode") for ext in resource.get("extension", [])
                    if ext.get("url") == TIME_QUALITY_URL), None)
    display = resource.get("code", {}).get("text") or next(
        (c.get("display") for c in resource.get("code", {}).get("coding", []) if c.get("display")), view.code)
    return {
        "observation_id": view.observation_id,
        "reading_id": view.reading_id,
        "code": view.code,
        "display": display,
        "effective_at": view.effective_at.isoformat(),
        "values": values,
        "interpretation": view.interpretation,
        "device": view.device_key,
        "time_quality": quality or "device",
        "sync": view.outbox_state,
        "status": resource.get("status"),
    }
