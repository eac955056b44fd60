"""Reading <-> JSON: every field survives the round trip exactly (Decimal scale, offsets, raw bytes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthhut.errors import StoreError
from healthhut.readings import (
    AbsentReason,
    DeviceIdentity,
    Metric,
    Quantity,
    Reading,
    ReadingKind,
    SampleSeries,
    StatusFlag,
    TimeSource,
    Transport,
    Unit,
)
from healthhut.records.reading_json import reading_from_json, reading_to_dict, reading_to_json

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
aware = st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets)
text = st.none() | st.text(max_size=20)
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None, min_value=-10**6, max_value=10**6)
quantities = st.one_of(
    st.builds(Quantity, decimals, st.sampled_from(Unit)),
    st.builds(Quantity.missing, st.sampled_from(AbsentReason), st.sampled_from(Unit)),
)
samples = st.lists(st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(0, 255), max_size=30)
series = st.builds(SampleSeries, aware, st.timedeltas(min_value=timedelta(microseconds=1),
                                                      max_value=timedelta(minutes=5)),
                   st.sampled_from(Unit), samples.map(tuple))
devices = st.builds(DeviceIdentity, st.sampled_from(Transport), text, text, text, text, text,
                    st.none() | st.text("0123456789ABCDEF", min_size=16, max_size=16), text, text, text)


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    source = draw(st.sampled_from(TimeSource))
    return Reading(
        kind=draw(st.sampled_from(ReadingKind)),
        device=draw(devices),
        received_at=draw(aware),
        values=draw(st.dictionaries(st.sampled_from(Metric), quantities, max_size=5)),
        measured_at=None if source is TimeSource.UNKNOWN else draw(aware),
        time_source=source,
        clock_skew=draw(st.none() | st.timedeltas(min_value=timedelta(days=-3000), max_value=timedelta(days=3000))),
        status=frozenset(draw(st.lists(st.sampled_from(StatusFlag), max_size=6))),
        sequence=draw(st.none() | st.integers(0, 2**32)),
        raw=draw(st.binary(max_size=64)),
        patient_hint=draw(text),
        series=draw(st.dictionaries(st.sampled_from(Metric), series, max_size=2)),
        body_site=draw(text),
    )


def assert_identical(a: Reading, b: Reading) -> None:
    assert a == b
    # equality alone would accept 2.0 for 2.00 and a shifted offset for the same instant
    assert {m: (str(q.value), q.unit, q.absent) for m, q in a.values.items()} == \
           {m: (str(q.value), q.unit, q.absent) for m, q in b.values.items()}
    for x, y in ((a.received_at, b.received_at), (a.measured_at, b.measured_at)):
        assert (x is None and y is None) or (x is not None and y is not None and x.utcoffset() == y.utcoffset())
    for m, s in a.series.items():
        assert [type(v) for v in s.samples] == [type(v) for v in b.series[m].samples]
        assert s.start.utcoffset() == b.series[m].start.utcoffset()


@settings(max_examples=300, deadline=None)
@given(readings())
def test_every_reading_round_trips_exactly(reading: Reading) -> None:
    assert_identical(reading_from_json(reading_to_json(reading)), reading)


@settings(max_examples=100, deadline=None)
@given(readings())
def test_serialisation_is_deterministic(reading: Reading) -> None:
    assert reading_to_json(reading) == reading_to_json(reading_from_json(reading_to_json(reading)))


@settings(max_examples=300, deadline=None)
@given(readings())
def test_the_text_is_what_the_standard_library_writes(reading: Reading) -> None:
    """Whichever encoder writes it (orjson for readings without series): the bytes of json.dumps."""
    assert reading_to_json(reading) == json.dumps(reading_to_dict(reading), ensure_ascii=False,
                                                  separators=(",", ":"))


def test_a_known_document() -> None:
    hut = timezone(timedelta(hours=8))
    reading = Reading(
        kind=ReadingKind.BLOOD_PRESSURE,
        device=DeviceIdentity(Transport.BLE, address="00:09:1F:80:12:34", system_id="00091FFFFE801234"),
        received_at=datetime(2026, 3, 1, 9, 0, 5, tzinfo=hut),
        values={Metric.SYSTOLIC: Quantity(Decimal("120.0"), Unit.MMHG),
                Metric.PULSE_RATE: Quantity.missing(AbsentReason.NOT_A_NUMBER, Unit.PER_MINUTE)},
        measured_at=datetime(2026, 3, 1, 8, 59, tzinfo=hut),
        time_source=TimeSource.DEVICE,
        clock_skew=timedelta(seconds=-75, microseconds=5),
        status=frozenset({StatusFlag.IRREGULAR_PULSE, StatusFlag.BODY_MOVEMENT}),
        raw=bytes.fromhex("1e7800500060"),
    )
    doc = json.loads(reading_to_json(reading))
    assert doc["values"]["systolic"] == {"value": "120.0", "unit": "mm[Hg]", "absent": None}
    assert doc["values"]["pulse_rate"]["absent"] == "not-a-number"
    assert doc["measured_at"] == "2026-03-01T08:59:00+08:00"
    assert doc["clock_skew_us"] == -74_999_995
    assert doc["status"] == ["body_movement", "irregular_pulse"]
    assert doc["raw"] == "1e7800500060"
    assert_identical(reading_from_json(reading_to_json(reading)), reading)


def test_zoneinfo_times_keep_their_offset() -> None:
    from zoneinfo import ZoneInfo

    at = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    reading = Reading(ReadingKind.BODY_WEIGHT, DeviceIdentity(Transport.FILE, serial="7"), received_at=at,
                      measured_at=at, values={Metric.BODY_WEIGHT: Quantity.of("71.35", Unit.KILOGRAM)})
    back = reading_from_json(reading_to_json(reading))
    assert back == reading and back.received_at.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("bad", ["not json", "[]", '{"v": 99}', '{"v": 1, "kind": "blood_pressure"}',
                                 reading_to_json(Reading(ReadingKind.SPO2, DeviceIdentity(Transport.MQTT, address="x"),
                                                         received_at=datetime(2026, 1, 1, tzinfo=UTC),
                                                         measured_at=datetime(2026, 1, 1, tzinfo=UTC)))
                                 .replace('"spo2"', '"no-such-kind"')])
def test_unreadable_documents_raise_store_error(bad: str) -> None:
    with pytest.raises(StoreError):
        reading_from_json(bad)
