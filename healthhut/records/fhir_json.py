"""Canonical JSON for FHIR resources: compact, key order as built, Decimals written exactly (36.80 stays 36.80).

fhir.resources serialises Decimal("36.80") as 36.8 (reference ble-and-fhir.md §5.3), which drops the device's
resolution, so resources are serialised here from our own dicts and the models are only used to validate.
Read stored JSON back with `loads` (floats become Decimal) to compare it with the dict it came from:
`loads(dumps(resource)) == resource`.

Every stored record passes through `dumps`, so it runs on C encoders (orjson, else simplejson; see `dumps`):
containers, strings, ints and floats are written in C as the standard library's `json` writes them
(ensure_ascii off, compact separators); only Decimals come back to Python to be written in plain positional
notation.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson
import simplejson


def _number(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError("FHIR JSON has no NaN or infinity")
    # 'f' never uses an exponent: Decimal("2E+1") -> "20", Decimal("36.80") -> "36.80".
    return format(value, "f")


def _decimal_text(value: Any) -> simplejson.RawJSON:
    """The encoder's fallback: a Decimal becomes its exact digits; anything else unencodable is refused."""
    if type(value) is Decimal:
        return _raw_number(str(value))
    if isinstance(value, Decimal):   # a subclass may write its own str(): formatted itself, not remembered
        return simplejson.RawJSON(_number(value))
    raise TypeError(f"cannot encode {type(value).__name__} as FHIR JSON")


# Each Observation carries a few Decimals and the same values come back all day (120 mm[Hg], 72 /min): their
# JSON text is remembered per str() of the Decimal, which fixes sign, digits and exponent (Decimal("120") and
# Decimal("120.0") hash alike, so the Decimal itself is not the key). The RawJSON is only ever read by the encoder.
# A NaN or infinity raises here and is not remembered.
@lru_cache(maxsize=4096)
def _raw_number(text: str) -> simplejson.RawJSON:
    return simplejson.RawJSON(_number(Decimal(text)))


# Built once; an encoder holds only its settings. use_decimal is off on purpose: simplejson would write
# str(Decimal("2E+1")) = "2E+1", so Decimals go to `_decimal_text` instead. namedtuple_as_object and for_json
# are off so that only dicts become objects, and encoding=None refuses bytes, as the standard library does.
# check_circular is off: the id bookkeeping of every dict and list cost a fifth of the encoding time (measured on
# a blood-pressure panel), and resources are trees built by our own code; a cycle would end in RecursionError
# instead of ValueError. The text is the same either way.
_ENCODER = simplejson.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, use_decimal=False, default=_decimal_text,
    encoding=None, check_circular=False,
    namedtuple_as_object=False, tuple_as_array=True, for_json=False, iterable_as_array=False,
)


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _fragment(value: Any) -> orjson.Fragment:
    """orjson's fallback: a Decimal becomes its exact digits (the same text as `_decimal_text`)."""
    if isinstance(value, Decimal):
        return orjson.Fragment(_decimal_text(value).encoded_json)
    raise TypeError(f"cannot encode {type(value).__name__} as FHIR JSON")


def dumps(resource: Any) -> str:
    """Serialise a JSON-ready structure (Decimals allowed) to compact canonical JSON text.

    NaN and infinities raise ValueError, other values that are not JSON raise TypeError (a structure that
    contains itself: RecursionError). Object keys should be strings (FHIR JSON has no other kind); int, float,
    bool and None keys are written as strings, as `json.dumps` does.

    Two encoders, one text: orjson writes a resource in a fifth of simplejson's time (measured on a
    blood-pressure panel) and writes strings, ints, Decimals (through `_fragment`), containers and key order as
    the standard library does. Where it would differ it either fails, and simplejson writes the text instead
    (integers beyond 64 bits, keys that are not strings, a lone surrogate, deep nesting, anything unencodable:
    simplejson then raises the error documented above), or writes `null` for a NaN or infinite float, so a
    text holding "null" anywhere is written again by simplejson, which refuses those. Datetimes and dataclasses
    are passed to `_fragment`, which refuses them as `json` does. One difference is kept: a float that `json`
    writes with an exponent (magnitude below 1e-4 or from 1e16) is written in orjson's form ("1e16", not
    "1e+16"; "0.00001", not "1e-05"), the same number. FHIR values are Decimals here: builders hand it no floats.
    """
    try:
        text = orjson.dumps(resource, default=_fragment, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _ENCODER.encode(resource)  # type: ignore[no-any-return]
    if "null" in text:
        return _ENCODER.encode(resource)  # type: ignore[no-any-return]
    return text


def loads(text: str) -> Any:
    """Parse stored FHIR JSON keeping decimals exact (JSON numbers with a fraction become Decimal)."""
    return json.loads(text, parse_float=Decimal)
