"""records.fhir_json on the C encoder writes exactly what a plain standard-library walk of the same tree writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthhut.records import fhir_json


def reference_dumps(value: Any) -> str:
    """The byte-for-byte target: stdlib json for everything, Decimals in positional notation."""
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + reference_dumps(v)
                              for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(reference_dumps(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


decimals = st.decimals(allow_nan=False, allow_infinity=False) | st.builds(
    lambda digits, exponent: Decimal(digits).scaleb(exponent), st.integers(-99999, 99999), st.integers(-12, 12))
# floats that json writes without an exponent (the others: see test_exponent_floats_keep_their_value)
plain_floats = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: "e" not in repr(f))
leaves = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | plain_floats | st.text() | decimals
trees = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                     | st.dictionaries(st.text(), inner, max_size=4), max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(trees)
def test_fast_encoder_matches_the_reference_walk(tree: Any) -> None:
    assert fhir_json.dumps(tree) == reference_dumps(tree)


@dataclass
class Point:
    x: int
    y: int


class Unit(StrEnum):
    MMHG = "mm[Hg]"


class Level(IntEnum):
    HIGH = 3


def test_enums_strings_and_exponents_are_written_like_the_standard_library() -> None:
    doc = {"code": Unit.MMHG, "level": Level.HIGH, "text": "line\u2028sep\n\x01\"\\é", "d": Decimal("1E-7"),
           "big": Decimal("1.50E+3"), "neg0": Decimal("-0.0"), "f": 0.1, "t": (1, 2)}
    text = fhir_json.dumps(doc)
    assert text == reference_dumps(doc)
    assert '"d":0.0000001,"big":1500,"neg0":-0.0,' in text
    assert fhir_json.loads(text)["big"] == 1500


@pytest.mark.parametrize("value", [1e16, 1e-05, -2.5e-300, 1.7976931348623157e308, 5e-324])
def test_exponent_floats_keep_their_value(value: float) -> None:
    text = fhir_json.dumps({"x": [value]})
    assert json.loads(text) == {"x": [value]}


def test_texts_holding_null_go_through_the_refusing_encoder() -> None:
    assert fhir_json.dumps({"x": None, "y": "nullable", "z": [None]}) == '{"x":null,"y":"nullable","z":[null]}'
    with pytest.raises(ValueError):
        fhir_json.dumps({"x": None, "y": float("nan")})


@pytest.mark.parametrize("other", [datetime(2024, 1, 1, tzinfo=UTC), date(2024, 1, 1), Point(1, 2), b"x", {1}])
def test_what_json_refuses_is_refused(other: Any) -> None:
    with pytest.raises(TypeError):
        fhir_json.dumps({"x": other})


def test_what_only_the_slow_encoder_writes_is_written_as_json_writes_it() -> None:
    doc = {"big": 2**70, 5: "int key", "s": "lone \ud800 surrogate"}
    assert fhir_json.dumps(doc) == json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), Decimal("-sNaN"), float("nan"), float("inf")])
def test_non_finite_numbers_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        fhir_json.dumps({"x": [bad]})


def test_non_json_values_are_refused() -> None:
    with pytest.raises(TypeError):
        fhir_json.dumps({"x": {1, 2}})
    with pytest.raises(TypeError):
        fhir_json.dumps({"x": b"bytes"})
