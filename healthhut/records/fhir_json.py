"""Canonical JSON for FHIR resources: compact, key order as built, Decimals written exactly (36.80 stays 36.80).

fhir.resources serialises Decimal("36.80") as 36.8 (reference ble-and-fhir.md §5.3), which drops the device's
resolution, so resources are serialised here from our own dicts and the models are only used to validate.
Read stored JSON back with `loads` (floats become Decimal) to compare it with the dict it came from:
`loads(dumps(resource)) == resource`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def _number(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError("FHIR JSON has no NaN or infinity")
    # 'f' never uses an exponent: Decimal("2E+1") -> "20", Decimal("36.80") -> "36.80".
    return format(value, "f")


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError("JSON object keys must be strings")
            if index:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, Decimal):
        out.append(_number(value))
    elif value is None or isinstance(value, str | bool | int):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, float):
        # Floats have no resolution to keep; refuse NaN/inf like FHIR does.
        out.append(json.dumps(value, allow_nan=False))
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as FHIR JSON")


def dumps(resource: Any) -> str:
    """Serialise a JSON-ready structure (Decimals allowed) to compact canonical JSON text."""
    out: list[str] = []
    _encode(resource, out)
    return "".join(out)


def loads(text: str) -> Any:
    """Parse stored FHIR JSON keeping decimals exact (JSON numbers with a fraction become Decimal)."""
    return json.loads(text, parse_float=Decimal)
