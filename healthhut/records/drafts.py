"""What the normaliser hands the store: ready, validated FHIR resources with their index columns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class PatientRef:
    """A resident as the platform knows them: an identifier in a system (national id, district MRN).

    `identifier_value` is personal data: it goes to the store and the platform, never to logs or events.
    """

    system: str
    value: str

    def __repr__(self) -> str:  # keep identifiers out of tracebacks and debug output
        return f"PatientRef(system={self.system!r}, value=<redacted>)"


@dataclass(frozen=True, slots=True)
class ObservationDraft:
    """One Observation the store will keep, validated once and serialised once.

    `local_key` identifies the measurement without the resident (device key + MDC code + device timestamp
    token), so a reading waiting for attribution is still unique. `identifier` is the PHD-IG conditional-create
    identifier value, known only once the resident is; `None` for a held (unassigned) record.
    """

    local_key: str
    identifier: str | None
    code: str                    # primary code (LOINC where one exists), for indexing and listings
    mdc_code: str | None
    effective_at: datetime
    interpretation: str | None   # worst of the v3 ObservationInterpretation flags: N, L, H, LL, HH
    resource: dict[str, Any]     # the Observation as a JSON-ready dict
    json: str                    # canonical serialisation of `resource`; stored as-is, never re-serialised

    @property
    def resource_type(self) -> str:
        """The FHIR type of `resource`: "Observation", or e.g. "DiagnosticReport" for a report that groups the
        reading's Observations (it is stored, de-duplicated and sent exactly like them)."""
        return str(self.resource.get("resourceType", "Observation"))
