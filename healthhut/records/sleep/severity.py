"""Severity bands for AHI/REI/ODI (reference §4.2) and the hypoxaemia grade by nadir SpO2."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    NORMAL = "normal"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


# < 5 normal, 5 <= x < 15 mild, 15 <= x < 30 moderate, >= 30 severe (AASM; the 2018 Chinese multidisciplinary
# guideline's erratum fixed exactly these boundaries)
SEVERITY_BANDS: tuple[tuple[float, Severity], ...] = (
    (30.0, Severity.SEVERE), (15.0, Severity.MODERATE), (5.0, Severity.MILD))


def severity_for_index(events_per_hour: float | None) -> Severity | None:
    """Band for an AHI/REI (or, in oximetry-only screening, an ODI) in events per hour."""
    if events_per_hour is None:
        return None
    for lower, band in SEVERITY_BANDS:
        if events_per_hour >= lower:
            return band
    return Severity.NORMAL


def hypoxaemia_grade(nadir_spo2: float | None) -> Severity | None:
    """Chinese grading of nocturnal hypoxaemia by nadir SpO2: mild 85-90, moderate 80-<85, severe < 80.

    The reference marks this table as consistent secondary sources not checked against the guideline itself,
    and does not say whether 90 belongs to "mild"; we read >= 90 as normal. Verify before clinical use.
    """
    if nadir_spo2 is None:
        return None
    if nadir_spo2 < 80:
        return Severity.SEVERE
    if nadir_spo2 < 85:
        return Severity.MODERATE
    if nadir_spo2 < 90:
        return Severity.MILD
    return Severity.NORMAL
