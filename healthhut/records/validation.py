"""R4B validation of the non-Observation resources a builder may hand the store (a night's DiagnosticReport)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from healthhut.errors import ReadingError

# resourceType -> (module, class) of the R4B model; only what a builder actually returns besides Observations
MODELS: Mapping[str, tuple[str, str]] = {
    "DiagnosticReport": ("fhir.resources.R4B.diagnosticreport", "DiagnosticReport"),
}


def validate_resource(resource: Mapping[str, Any]) -> None:
    """Validate with the R4B model of its resourceType; ReadingError naming only the failing element paths."""
    from pydantic import ValidationError

    resource_type = str(resource.get("resourceType"))
    target = MODELS.get(resource_type)
    if target is None:
        raise ReadingError(f"a builder returned a {resource_type}, which the store does not keep")
    model = getattr(importlib.import_module(target[0]), target[1])
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        # pydantic messages echo the input; keep only where it failed (no values, no identifiers).
        where = sorted({".".join(str(part) for part in error["loc"]) for error in exc.errors()})
        raise ReadingError(f"the FHIR {resource_type} does not validate at " + ", ".join(where[:5])) from None
