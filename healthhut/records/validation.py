"""R4B validation of the non-Observation resources a builder may hand the store (a night's DiagnosticReport),
and the one way a refusal is worded (records.shape_validation words the Observations' the same)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from healthhut.errors import ReadingError

if TYPE_CHECKING:
    from pydantic import ValidationError

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
        raise refusal(resource_type, exc) from None


def refusal(resource_type: str, exc: ValidationError) -> ReadingError:
    """The ReadingError for a resource the R4B model refused: where it failed, never what it held.

    pydantic's own messages echo the input (values, identifiers), so only the element paths are kept.
    """
    where = sorted({".".join(str(part) for part in error["loc"]) for error in exc.errors()})
    return ReadingError(f"the FHIR {resource_type} does not validate at " + ", ".join(where[:5]))
