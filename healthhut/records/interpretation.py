"""Reference-range interpretation: a value in canonical units -> v3 ObservationInterpretation flag.

Flags are the v3 codes N, L, H, LL, HH. `worst` ranks critical (LL/HH) above abnormal (L/H) above normal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from healthhut.readings import Metric
from healthhut.records import codes
from healthhut.records.ranges import ReferenceRanges

_SEVERITY = {"N": 0, "L": 1, "H": 1, "LL": 2, "HH": 2}


def _banded(v: Decimal, *, very_low_below: Decimal, low_below: Decimal, high_from: Decimal,
            very_high_from: Decimal) -> str:
    """Bands whose high limits are inclusive ("from") and low limits exclusive ("below"); critical first."""
    if v >= very_high_from:
        return "HH"
    if v < very_low_below:
        return "LL"
    if v >= high_from:
        return "H"
    if v < low_below:
        return "L"
    return "N"


def _systolic(v: Decimal, r: ReferenceRanges) -> str:
    return _banded(v, very_low_below=r.systolic_very_low_below, low_below=r.systolic_low_below,
                   high_from=r.systolic_high_from, very_high_from=r.systolic_very_high_from)


def _diastolic(v: Decimal, r: ReferenceRanges) -> str:
    return _banded(v, very_low_below=r.diastolic_very_low_below, low_below=r.diastolic_low_below,
                   high_from=r.diastolic_high_from, very_high_from=r.diastolic_very_high_from)


def _spo2(v: Decimal, r: ReferenceRanges) -> str:
    if v < r.spo2_very_low_below:
        return "LL"
    if v < r.spo2_low_below:
        return "L"
    return "N"


def _pulse(v: Decimal, r: ReferenceRanges) -> str:
    if v > r.pulse_very_high_above:
        return "HH"
    if v < r.pulse_very_low_below:
        return "LL"
    if v > r.pulse_high_above:
        return "H"
    if v < r.pulse_low_below:
        return "L"
    return "N"


def _temperature(v: Decimal, r: ReferenceRanges) -> str:
    return _banded(v, very_low_below=r.temperature_very_low_below, low_below=r.temperature_low_below,
                   high_from=r.temperature_high_from, very_high_from=r.temperature_very_high_from)


_CLASSIFIERS: dict[Metric, Callable[[Decimal, ReferenceRanges], str]] = {
    Metric.SYSTOLIC: _systolic,
    Metric.DIASTOLIC: _diastolic,
    Metric.SPO2: _spo2,
    Metric.PULSE_RATE: _pulse,
    Metric.BODY_TEMPERATURE: _temperature,
}


def interpret(metric: Metric, canonical_value: Decimal, ranges: ReferenceRanges) -> str | None:
    """The flag for a value in canonical units (mm[Hg], %, /min, Cel); None for metrics without bands."""
    classify = _CLASSIFIERS.get(metric)
    return classify(canonical_value, ranges) if classify else None


def worst(flags: Iterable[str | None]) -> str | None:
    """The most severe flag (first one wins a tie, e.g. HH before a later LL); None if there is none."""
    result: str | None = None
    for flag in flags:
        if flag is not None and (result is None or _SEVERITY[flag] > _SEVERITY[result]):
            result = flag
    return result


# One Code per flag, made once (a frozen dataclass, so nothing can change it): a BP reading asks for up to three.
_INTERPRETATION_CODES: Mapping[str, codes.Code] = MappingProxyType({
    flag: codes.Code(codes.V3_INTERPRETATION, flag, display) for flag, display in codes.INTERPRETATION_DISPLAY.items()
})


def interpretation_concept(flag: str) -> dict[str, Any]:
    """The CodeableConcept for one flag (a new dict every time: the caller may change it)."""
    return _INTERPRETATION_CODES[flag].concept()
