"""Lossless JSON form of a Reading, as kept in the `readings` table and reloaded for re-attribution.

Decimals travel as strings (so 2.00 stays 2.00), raw bytes as hex, datetimes as ISO-8601 with their own
offset, timedeltas as whole microseconds. The document carries a format version so old rows stay readable.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from healthhut.errors import ReadingError, StoreError
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

FORMAT_VERSION = 1
_DEVICE_FIELDS = ("address", "name", "manufacturer", "model", "serial", "system_id", "firmware", "hardware",
                  "software")
_ONE_MICROSECOND = timedelta(microseconds=1)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _duration(value: timedelta | None) -> int | None:
    return None if value is None else value // _ONE_MICROSECOND


def _quantity(q: Quantity) -> dict[str, Any]:
    return {"value": None if q.value is None else str(q.value), "unit": q.unit.value,
            "absent": None if q.absent is None else q.absent.value}


def _series(s: SampleSeries) -> dict[str, Any]:
    return {"start": s.start.isoformat(), "period_us": _duration(s.period), "unit": s.unit.value,
            "samples": list(s.samples)}


def reading_to_dict(reading: Reading) -> dict[str, Any]:
    """The JSON-ready dict form of `reading` (every field, nothing derived)."""
    device = reading.device
    return {
        "v": FORMAT_VERSION,
        "kind": reading.kind.value,
        "device": {"transport": device.transport.value,
                   **{name: getattr(device, name) for name in _DEVICE_FIELDS}},
        "received_at": reading.received_at.isoformat(),
        "measured_at": _time(reading.measured_at),
        "time_source": reading.time_source.value,
        "clock_skew_us": _duration(reading.clock_skew),
        "values": {metric.value: _quantity(q) for metric, q in reading.values.items()},
        "status": sorted(flag.value for flag in reading.status),
        "sequence": reading.sequence,
        "raw": reading.raw.hex(),
        "patient_hint": reading.patient_hint,
        "series": {metric.value: _series(s) for metric, s in reading.series.items()},
        "body_site": reading.body_site,
    }


# Made once: json.dumps with any non-default option builds a new encoder on every call. An encoder holds only
# its settings (these are json.dumps's own defaults plus the two options).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def reading_to_json(reading: Reading) -> str:
    """Serialise `reading` compactly; `reading_from_json` gives back an equal Reading.

    Without series the document holds only strings, ints, booleans and nulls, which orjson writes byte for
    byte as `json` does, in a fraction of the time (every stored reading passes here). Series samples are
    floats, which `json` writes in its own notation (and NaN as NaN): those readings keep the json encoder.
    """
    document = reading_to_dict(reading)
    if not reading.series:
        try:
            return orjson.dumps(document).decode()
        except TypeError:  # e.g. an int beyond 64 bits: json writes it
            pass
    return _ENCODER.encode(document)


def _parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _parse_duration(micros: int | None) -> timedelta | None:
    return None if micros is None else timedelta(microseconds=micros)


def _parse_quantity(doc: dict[str, Any]) -> Quantity:
    value = None if doc["value"] is None else Decimal(doc["value"])
    absent = None if doc["absent"] is None else AbsentReason(doc["absent"])
    return Quantity(value, Unit(doc["unit"]), absent)


def _parse_series(doc: dict[str, Any]) -> SampleSeries:
    period = _parse_duration(doc["period_us"])
    start = _parse_time(doc["start"])
    if period is None or start is None:
        raise ValueError("a series needs a start and a period")
    return SampleSeries(start=start, period=period, unit=Unit(doc["unit"]), samples=tuple(doc["samples"]))


def reading_from_dict(doc: dict[str, Any]) -> Reading:
    """Rebuild a Reading from `reading_to_dict` output; raises StoreError if the document is not one."""
    try:
        if doc.get("v") != FORMAT_VERSION:
            raise ValueError(f"unknown reading format version {doc.get('v')!r}")
        dev = doc["device"]
        device = DeviceIdentity(transport=Transport(dev["transport"]),
                                **{name: dev.get(name) for name in _DEVICE_FIELDS})
        received_at = _parse_time(doc["received_at"])
        if received_at is None:
            raise ValueError("received_at is missing")
        return Reading(
            kind=ReadingKind(doc["kind"]),
            device=device,
            received_at=received_at,
            values={Metric(name): _parse_quantity(q) for name, q in doc["values"].items()},
            measured_at=_parse_time(doc["measured_at"]),
            time_source=TimeSource(doc["time_source"]),
            clock_skew=_parse_duration(doc["clock_skew_us"]),
            status=frozenset(StatusFlag(flag) for flag in doc["status"]),
            sequence=doc["sequence"],
            raw=bytes.fromhex(doc["raw"]),
            patient_hint=doc["patient_hint"],
            series={Metric(name): _parse_series(s) for name, s in doc["series"].items()},
            body_site=doc["body_site"],
        )
    except (KeyError, TypeError, ValueError, InvalidOperation, ReadingError) as exc:
        # the message names the problem, never the stored values
        raise StoreError(f"stored reading is not readable: {type(exc).__name__}") from exc


def reading_from_json(text: str) -> Reading:
    """Parse `reading_to_json` output back into a Reading."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise StoreError("stored reading is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise StoreError("stored reading is not a JSON object")
    return reading_from_dict(doc)
