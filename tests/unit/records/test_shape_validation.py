"""The shape validator gives the full R4B model's verdict: differential tests on mutated real Observations."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.registry import get_codec
from healthhut.errors import ReadingError
from healthhut.readings import DeviceIdentity, Transport
from healthhut.records.drafts import PatientRef
from healthhut.records.normalise import OBSERVATION_MODEL, NormaliseSettings, observations_for
from healthhut.records.shape_validation import ShapeValidator, shape_of

RESIDENT = PatientRef(system="urn:oid:2.16.156.10011.1.1", value="110101199003070011")
CONTEXT = ReadingContext(device=DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74"),
                         received_at=datetime(2024, 6, 23, 6, 40, tzinfo=UTC), timezone=ZoneInfo("Asia/Shanghai"))
# (codec, frame) pairs from the SIG specification vectors of the codec tests: every builder, absent values,
# status bits, with and without the device's time stamp
FRAMES = [
    ("bls.measurement", "06 78 00 50 00 5D 00 E8 07 06 17 0E 23 0A 48 00"),
    ("bls.measurement", "19 A0 F0 6B F0 7D F0 02 06 00"),
    ("bls.measurement", "16 FF 07 FF 07 FF 07 E8 07 06 17 0E 23 0A FF 07 00 00"),
    ("bls.measurement", "1E 91 00 5F 00 70 00 00 00 00 00 00 00 00 83 00 FF 29 00"),
    ("plx.spot-check", "0B 5F 00 40 00 E8 07 06 17 0E 23 0A 80 02 15 F0"),
    ("plx.spot-check", "14 FF 07 FF 07 20 00 00"),
    ("hts.temperature", "07 DA 03 00 FF E8 07 06 17 0E 23 0A 03"),
    ("wss.weight", "0F 58 3E E8 07 06 17 0E 23 0A 01 E8 00 B7 02"),
    ("wss.weight", "00 FF FF"),
]


def corpus() -> list[str]:
    normalise = NormaliseSettings(site_id="hut-07")
    texts: list[str] = []
    for name, frame in FRAMES:
        codec = get_codec(name)
        for reading in codec.readings(codec.decode(bytes.fromhex(frame)), CONTEXT):
            for patient in (RESIDENT, None):
                texts.extend(draft.json for draft in observations_for(reading, patient, normalise))
    return texts


CORPUS = corpus()


def compact(document: Any) -> str:
    """As `fhir_json.dumps` writes (so a known shape's template applies), for any value hypothesis makes."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def full_verdict(text: str) -> bool:
    from fhir.resources.R4B.observation import Observation
    from pydantic import ValidationError

    try:
        Observation.model_validate_json(text)
    except ValidationError:
        return False
    return True


def fast_verdict(validator: ShapeValidator, text: str) -> bool:
    try:
        validator.validate(text)
    except ReadingError:
        return False
    return True


def warmed(*texts: str) -> ShapeValidator:
    validator = ShapeValidator(OBSERVATION_MODEL)
    for text in texts:
        fast_verdict(validator, text)  # a refused text teaches it nothing, and that is part of what is tested
    return validator


def leaf_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every scalar position of a JSON document (inside lists too)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaf_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaf_paths(value, (*path, index))
    else:
        yield path


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


DELETE = object()
DATES = ["2024-06-23T14:35:10+08:00", "2024-06-23", "2024-06", "2024", "2024-02-30", "2024-06-23T14:35:10",
         "2024-06-23T24:00:00Z", "2024-06-23T14:35:10.123Z", "23/06/2024", "0000-01-01", "2024-13-01",
         "2024-06-23T14:35:60Z", "2024-06-23T14:35:10+15:00"]
SCALARS = st.one_of(
    st.sampled_from(DATES),
    st.sampled_from(["", " ", "final", "a b", "a  b", " lead", "trail ", "urn:uuid:x", "Patient/1", "\n",
                     "mm[Hg]", "http://loinc.org", "8480-6", "with\ttab", "é", "0.5", "-0", "1e3"]),
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.just(DELETE),
    st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=2),
    st.just({}),
    st.just({"extension": [{"url": "http://example.org/x", "valueString": "y"}]}),
)


@pytest.mark.parametrize("text", CORPUS[:3] + CORPUS[-3:])
def test_a_known_shape_does_not_run_the_full_model_again(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir.resources.R4B.observation import Observation

    validator = warmed(text)
    calls: list[str] = []
    monkeypatch.setattr(Observation, "model_validate_json", lambda t, *a, **k: calls.append(t))
    validator.validate(text)
    validator.validate(json.dumps(json.loads(text), indent=1))  # same shape, other spacing: parsed, not matched
    assert calls == []


def test_compact_texts_of_a_known_shape_skip_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    validator = warmed(*CORPUS)
    parsed: list[str] = []
    slow = validator._validate_parsed
    monkeypatch.setattr(validator, "_validate_parsed", lambda text: (parsed.append(text), slow(text)))
    for text in CORPUS:
        validator.validate(text)
    spaced = json.dumps(json.loads(CORPUS[0]))
    validator.validate(spaced)
    assert parsed == [spaced]


def test_the_corpus_covers_many_shapes() -> None:
    shapes = {shape_of(json.loads(text))[0] for text in CORPUS}
    assert len(CORPUS) >= 30
    assert len(shapes) >= 12
    assert all(full_verdict(text) for text in CORPUS)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_verdict_equals_the_full_models_for_a_changed_value(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(CORPUS))
    document = json.loads(text)
    path = data.draw(st.sampled_from(list(leaf_paths(document))))
    changed = replaced(document, path, data.draw(SCALARS))
    expected = full_verdict(compact(changed))
    # compact text: the original's template applies to same-shape mutations; spaced text: the parsing path
    for mutated in (compact(changed), json.dumps(changed, ensure_ascii=False)):
        validator = warmed(text)
        assert fast_verdict(validator, mutated) == expected, (path, mutated)
        # and the answer does not depend on what the validator saw first
        assert fast_verdict(warmed(mutated, text), mutated) == expected


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_the_verdict_equals_the_full_models_for_two_changed_values(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(CORPUS))
    document = json.loads(text)
    paths = list(leaf_paths(document))
    for _ in range(2):
        path = data.draw(st.sampled_from(paths))
        document = replaced(document, path, data.draw(st.one_of(st.sampled_from(DATES), st.text(max_size=6),
                                                                st.floats(allow_nan=False), st.integers())))
    mutated = compact(document)
    assert fast_verdict(warmed(text), mutated) == full_verdict(mutated)


@pytest.mark.parametrize("where, value", [
    (("effectiveDateTime",), "2024-06-23T14:35:10"),   # a time without a zone
    (("status",), "fin  al"),                           # a code allows single inner spaces only
    (("valueQuantity", "value"), "12"),                 # a decimal given as a string
    (("code", "coding", 0, "system"), "has space"),     # uri
    (("subject", "reference"), 7),
])
def test_examples_agree_with_the_full_model(where: tuple[Any, ...], value: Any) -> None:
    text = next(t for t in CORPUS if {"valueQuantity", "subject"} <= json.loads(t).keys())
    for mutated in (compact(replaced(json.loads(text), where, value)), json.dumps(replaced(json.loads(text), where,
                                                                                             value))):
        assert fast_verdict(warmed(text), mutated) == full_verdict(mutated)


def test_a_bad_value_in_a_known_shape_is_refused_naming_the_element_only() -> None:
    text = next(t for t in CORPUS if '"effectiveDateTime"' in t)
    mutated = compact(replaced(json.loads(text), ("effectiveDateTime",), "2024-02-30T10:00:00+08:00"))
    validator = warmed(text)
    with pytest.raises(ReadingError) as refused:
        validator.validate(mutated)
    assert "effectiveDateTime" in refused.value.message
    assert "2024" not in refused.value.message


def test_another_resource_type_in_a_known_shape_is_refused() -> None:
    text = CORPUS[0]
    mutated = compact(replaced(json.loads(text), ("resourceType",), "Patient"))
    assert not full_verdict(mutated)
    with pytest.raises(ReadingError, match="resourceType"):
        warmed(text).validate(mutated)


def test_an_invalid_shape_is_never_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir.resources.R4B.observation import Observation

    document = json.loads(CORPUS[0])
    document["unknownElement"] = "x"
    text = json.dumps(document)
    validator = ShapeValidator(OBSERVATION_MODEL)
    full = Observation.model_validate_json
    calls: list[str] = []

    def counting(t: str, *a: Any, **k: Any) -> Any:
        calls.append(t)
        return full(t, *a, **k)

    monkeypatch.setattr(Observation, "model_validate_json", counting)
    for _ in range(2):
        with pytest.raises(ReadingError, match="unknownElement"):
            validator.validate(text)
    assert len(calls) == 2


def test_contained_resources_always_meet_the_full_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir.resources.R4B.observation import Observation

    document = json.loads(CORPUS[0])
    document["contained"] = [{"resourceType": "Patient", "id": "p1", "active": True}]
    text = json.dumps(document)
    assert full_verdict(text)
    validator = warmed(text)
    calls: list[str] = []
    monkeypatch.setattr(Observation, "model_validate_json", lambda t, *a, **k: calls.append(t))
    validator.validate(text)
    assert calls == [text]


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(ReadingError, match="not JSON"):
        ShapeValidator(OBSERVATION_MODEL).validate('{"resourceType": ')
    with pytest.raises(ReadingError):
        ShapeValidator(OBSERVATION_MODEL).validate("[1, 2]")
