"""Reference ranges for Observation.interpretation, and the limits beyond which a value is impossible.

Bands follow /work/shared/reference/serial-and-sleep.md §5: blood pressure per the Chinese hypertension
guideline 2018 (kept by the 2024 revision) with the proposed gateway mapping of §5.1; SpO2 and pulse per §5.2.
Naming: `*_from` is inclusive (value >= cut-off is flagged), `*_below` is exclusive (value < cut-off flagged).
Every cut-off can be overridden from the config `[ranges]` table (e.g. a site at altitude lowers SpO2 bands).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from types import MappingProxyType
from typing import Any

from healthhut.errors import ReadingError


@dataclass(frozen=True, slots=True)
class ReferenceRanges:
    """Interpretation cut-offs, in mm[Hg], %, /min and Cel."""

    # Blood pressure (China 2018/2024): >= 140/90 hypertension (H), grade 3 >= 180/110 (HH);
    # the low side is the §5.1 "proposed gateway mapping" (< 90/60 L, < 80/50 LL), a local policy.
    systolic_high_from: Decimal = Decimal(140)
    systolic_very_high_from: Decimal = Decimal(180)
    systolic_low_below: Decimal = Decimal(90)
    systolic_very_low_below: Decimal = Decimal(80)
    diastolic_high_from: Decimal = Decimal(90)
    diastolic_very_high_from: Decimal = Decimal(110)
    diastolic_low_below: Decimal = Decimal(60)
    diastolic_very_low_below: Decimal = Decimal(50)
    # SpO2 (§5.2): >= 95 N; 94 "N or L by policy" -> N here; 90-93 L; < 90 LL. Below `spo2_urgent_below`
    # (< 85) is still LL for FHIR; alerting may use it for "urgent".
    spo2_low_below: Decimal = Decimal(94)
    spo2_very_low_below: Decimal = Decimal(90)
    spo2_urgent_below: Decimal = Decimal(85)
    # Pulse (§5.2): 60-100 N; 50-59 / 101-120 L/H; < 40 / > 130 LL/HH. The table leaves 40-49 and 121-130
    # open; we read them as L and H (only the stated extremes are critical).
    pulse_high_above: Decimal = Decimal(100)
    pulse_very_high_above: Decimal = Decimal(130)
    pulse_low_below: Decimal = Decimal(60)
    pulse_very_low_below: Decimal = Decimal(40)
    # Body temperature, Celsius. Not in the reference: common Chinese clinical usage (fever >= 37.3,
    # high fever >= 39.1) and hypothermia < 35.0; below 36.0 flagged low. Adjust per site.
    temperature_high_from: Decimal = Decimal("37.3")
    temperature_very_high_from: Decimal = Decimal("39.1")
    temperature_low_below: Decimal = Decimal("36.0")
    temperature_very_low_below: Decimal = Decimal("35.0")

    def __post_init__(self) -> None:
        # very-low <= low and high <= very-high, else every reading in between gets a nonsense flag.
        orders = (
            ("systolic_very_low_below", "systolic_low_below", "systolic_high_from", "systolic_very_high_from"),
            ("diastolic_very_low_below", "diastolic_low_below", "diastolic_high_from",
             "diastolic_very_high_from"),
            ("spo2_urgent_below", "spo2_very_low_below", "spo2_low_below"),
            ("pulse_very_low_below", "pulse_low_below", "pulse_high_above", "pulse_very_high_above"),
            ("temperature_very_low_below", "temperature_low_below", "temperature_high_from",
             "temperature_very_high_from"),
        )
        for names in orders:
            for lower, upper in pairwise(names):
                if getattr(self, lower) > getattr(self, upper):
                    raise ReadingError(f"ranges: {upper} must not be below {lower}")


DEFAULT_RANGES = ReferenceRanges()

_FIELDS = {f.name for f in dataclasses.fields(ReferenceRanges)}


def _decimal(key: str, raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise ReadingError(f"ranges: {key} must be a number")
    try:
        # str() first so a TOML float 37.3 becomes Decimal("37.3"), not its binary expansion.
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ReadingError(f"ranges: {key} must be a number") from None
    if not value.is_finite():
        raise ReadingError(f"ranges: {key} must be a finite number")
    return value


def ranges_from_mapping(data: Mapping[str, Any]) -> ReferenceRanges:
    """Defaults overridden by the keys of a config `[ranges]` table; ReadingError names a bad key."""
    overrides: dict[str, Decimal] = {}
    for key, raw in data.items():
        if key not in _FIELDS:
            raise ReadingError(f"ranges: unknown key {key}")
        overrides[key] = _decimal(key, raw)
    return dataclasses.replace(DEFAULT_RANGES, **overrides)


# Physiologically impossible beyond these (canonical units: mm[Hg], /min, %, Cel, kg, m, kg/m2). A value
# outside makes the whole reading a ReadingError: it is a device or decoding fault, not a patient state.
PLAUSIBLE_LIMITS: Mapping[str, tuple[Decimal, Decimal]] = MappingProxyType({
    "systolic": (Decimal(20), Decimal(300)),
    "diastolic": (Decimal(10), Decimal(250)),
    "mean_arterial": (Decimal(10), Decimal(280)),
    "pulse_rate": (Decimal(10), Decimal(350)),
    "spo2": (Decimal("0.1"), Decimal(100)),
    "body_temperature": (Decimal(25), Decimal(45)),
    "body_weight": (Decimal("0.1"), Decimal(500)),
    "body_height": (Decimal("0.2"), Decimal("2.8")),
    "bmi": (Decimal(5), Decimal(150)),
})
