"""Golden corpus: decode -> Reading -> Observations -> JSON texts must stay byte for byte what they were.

Every line of golden/normalise_corpus.jsonl was written by the code before the ingest-speed work (issue 2):
a frame or hand-built Reading, decoded (`describe`), its Reading JSON (`reading_to_json`), and for each
resident/settings combination the built Observations (`build_observations`, index columns included) serialised
with `fhir_json.dumps`, or the error raised. A faster decoder or builder that changes one byte fails here.

Regenerate ONLY for an intended output change: `.venv/bin/python tests/unit/records/test_normalise_golden.py`.
"""

from __future__ import annotations

import contextlib
import json
import struct
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from healthhut.drivers.codecs.base import ReadingContext, describe
from healthhut.drivers.codecs.registry import get_codec
from healthhut.errors import HealthhutError
from healthhut.readings import (
    AbsentReason,
    DeviceIdentity,
    Metric,
    Quantity,
    Reading,
    ReadingKind,
    StatusFlag,
    TimeSource,
    Transport,
    Unit,
)
from healthhut.records import fhir_json
from healthhut.records.drafts import PatientRef
from healthhut.records.normalise import NormaliseSettings, build_observations
from healthhut.records.ranges import ranges_from_mapping
from healthhut.records.reading_json import reading_to_json
from healthhut.records.resources import device_resource, gateway_resource, patient_resource

GOLDEN = Path(__file__).parent / "golden" / "normalise_corpus.jsonl"

PATIENTS: tuple[tuple[str, PatientRef | None], ...] = (
    ("held", None),
    ("resident", PatientRef("urn:oid:2.999.1", "1234567")),
    ("resident-2", PatientRef("http://example.org/mrn", "Zoë-42")),   # non-ASCII goes out unescaped
)
SETTINGS: tuple[tuple[str, NormaliseSettings], ...] = (
    ("default", NormaliseSettings(site_id="hut-07")),
    ("altitude", NormaliseSettings(site_id="hut-highland", ranges=ranges_from_mapping({
        "spo2_low_below": 90, "spo2_very_low_below": 85, "spo2_urgent_below": 80, "systolic_high_from": 130,
        "pulse_high_above": 90, "temperature_high_from": 37.0}))),
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
CONTEXTS: tuple[tuple[str, ReadingContext], ...] = (
    ("ble-shanghai", ReadingContext(DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74"),
                                    datetime(2024, 6, 23, 6, 36, 2, 120000, tzinfo=UTC), SHANGHAI)),
    ("sysid-skew", ReadingContext(
        DeviceIdentity(Transport.BLE, address="c0:ff:ee:00:00:01", system_id="c0ffeefffe000001",
                       model="UA-651BLE", manufacturer="A&D", name="BP cuff\x00"),
        datetime(2024, 6, 23, 14, 36, 2, tzinfo=timezone(timedelta(hours=8))), timezone(timedelta(hours=8)),
        clock_skew=timedelta(seconds=95), patient_hint="3")),
    ("serial-newyork", ReadingContext(
        DeviceIdentity(Transport.SERIAL, address="/dev/ttyUSB0", model="CMS50D+", serial="SN1234"),
        datetime(2024, 7, 4, 16, 0, 0, 999, tzinfo=UTC), NEW_YORK, clock_skew=timedelta(seconds=-30))),
)


def _bp(flags: int, systolic: int, diastolic: int, mean: int, *, stamp: tuple[int, ...] | None = None,
        pulse: int | None = None, user: int | None = None, status: int | None = None) -> str:
    """A 0x2A35 frame in hex; SFLOAT raw values given as 16-bit integers."""
    out = bytes([flags]) + struct.pack("<HHH", systolic, diastolic, mean)
    if stamp is not None:
        out += struct.pack("<HBBBBB", *stamp)
    if pulse is not None:
        out += struct.pack("<H", pulse)
    if user is not None:
        out += bytes([user])
    if status is not None:
        out += struct.pack("<H", status)
    return out.hex(" ")


STAMP = (2024, 6, 23, 14, 35, 10)
# (codec, frame hex): the reference vectors of the codec tests, then flag/status/range/special-value variants.
FRAMES: tuple[tuple[str, str], ...] = (
    ("bls.measurement", "06 78 00 50 00 5D 00 E8 07 06 17 0E 23 0A 48 00"),           # BPM-1
    ("bls.measurement", "19 A0 F0 6B F0 7D F0 02 06 00"),                              # BPM-2 kPa, user, status
    ("bls.measurement", "16 FF 07 FF 07 FF 07 E8 07 06 17 0E 23 0A FF 07 00 00"),     # BPM-3 NaN
    ("bls.measurement", "1E 91 00 5F 00 70 00 00 00 00 00 00 00 00 83 00 FF 29 00"),  # BPM-4 unknown time
    ("bls.measurement", "04 76 00 4C 00 FF 07 D5 F2"),                                 # BPM-5
    ("bls.measurement", "06 78 00 50 00 5D 00 E8 07 06 17 0E 23 0A 48 00 AB CD"),     # surplus bytes
    ("bls.measurement", _bp(0x00, 120, 80, 93)),
    ("bls.measurement", _bp(0x02, 75, 45, 55, stamp=(2024, 2, 29, 23, 59, 59))),      # LL/LL
    ("bls.measurement", _bp(0x02, 85, 55, 65, stamp=(2000, 1, 1, 0, 0, 0))),          # L/L
    ("bls.measurement", _bp(0x06, 150, 95, 110, stamp=(2024, 3, 10, 2, 30, 0), pulse=105)),   # H/H
    ("bls.measurement", _bp(0x06, 190, 115, 140, stamp=(2024, 11, 3, 1, 30, 0), pulse=135)),  # HH/HH
    ("bls.measurement", _bp(0x06, 139, 89, 100, stamp=STAMP, pulse=45)),
    ("bls.measurement", _bp(0x06, 140, 90, 100, stamp=STAMP, pulse=35)),
    ("bls.measurement", _bp(0x04, 0xF4B0, 0xF320, 0xF3E8, pulse=0xF258)),             # decimals .0 / .00
    ("bls.measurement", _bp(0x03, 0xF085, 0xF057, 0xF06B, stamp=STAMP)),              # kPa with time
    ("bls.measurement", _bp(0x01, 0x07FE, 0x0802, 0x0800)),                           # +INF, -INF, NRes
    ("bls.measurement", _bp(0x01, 0x0801, 0x07FF, 0x07FF)),                           # reserved, kPa NaN
    ("bls.measurement", _bp(0x04, 0x100C, 0x1008, 0x07FF, pulse=0x1007)),             # exponent +1
    ("bls.measurement", _bp(0x08, 120, 80, 93, user=255)),
    ("bls.measurement", _bp(0x08, 120, 80, 93, user=0)),
    *(("bls.measurement", _bp(0x16, 120, 80, 93, stamp=STAMP, pulse=72, status=bits))
      for bits in (0x0000, 0x0001, 0x0002, 0x0004, 0x0008, 0x0010, 0x0018, 0x0020, 0x003F, 0xFFC0, 0xFFFF)),
    ("bls.measurement", _bp(0x02, 120, 80, 93, stamp=(2023, 2, 30, 10, 0, 0))),       # impossible date
    ("bls.measurement", _bp(0x02, 120, 80, 93, stamp=(2024, 6, 23, 25, 0, 0))),       # impossible hour
    ("bls.measurement", _bp(0x00, 400, 80, 93)),                                      # implausible
    ("bls.measurement", _bp(0x00, 80, 120, 93)),                                      # diastolic > systolic
    ("bls.measurement", _bp(0x14, 400, 80, 93, pulse=72, status=0x0001)),            # implausible, bits
    ("bls.measurement", _bp(0x04, 120, 80, 93, pulse=500)),                           # implausible pulse
    ("bls.measurement", _bp(0xE6, 120, 80, 93, stamp=STAMP, pulse=72)),               # reserved flag bits
    ("bls.measurement", _bp(0x06, 120, 80, 93, stamp=(1999, 12, 31, 23, 59, 58), pulse=0x3000)),  # pre-2000, 0E+3
    ("bls.measurement", _bp(0x00, 0x1078, 0x0050, 0x005D)),                          # 1200 -> implausible
    ("bls.measurement", _bp(0x00, 0xE4B0, 0xF320, 0xF3E8)),                          # 0.0120 (exp -2)
    ("bls.measurement", "06 78 00 50 00 5D 00 E8 07 06"),                             # short: DecodeError
    ("bls.measurement", "1F 78 00 50 00 5D 00"),                                      # short after pressures
    ("bls.measurement", ""),
    ("bls.intermediate-cuff", "00 98 00 FF 07 FF 07"),
    ("bls.record", "03 2301 352A 06 7800 5000 5D00 E807 06 17 0E 23 0A 4800"),
    ("plx.spot-check", "00 61 00 48 00"),                                              # SPOT-1
    ("plx.spot-check", "0B 5F 00 40 00 E8 07 06 17 0E 23 0A 80 02 15 F0"),            # SPOT-2
    ("plx.spot-check", "14 FF 07 FF 07 20 00 00"),                                     # SPOT-3
    ("plx.spot-check", "03 59 00 65 00 E8 07 06 18 03 0C 00 80 02"),                  # SPOT-4
    ("plx.spot-check", "04 58 00 3C 00 FF FF"),
    ("plx.spot-check", "04 5A 00 3C 00 00 81"),
    ("plx.spot-check", "08 5D 00 3C 00 FF FF FF"),
    ("plx.spot-check", "08 5D 00 3C 00 01 20 40"),
    ("plx.spot-check", "00 50 00 3C 00"),
    ("plx.continuous", "00 60 00 3A 00"),                                              # CONT-1
    ("plx.continuous", "03 60 00 3A 00 5F 00 3C 00 60 00 39 00"),                      # CONT-2
    ("plx.continuous", "1C FF 07 FF 07 20 00 00 02 00 FF 07"),                         # CONT-3
    ("hts.temperature", "00 70 01 00 FF"),                                             # TEMP-1
    ("hts.temperature", "07 DA 03 00 FF E8 07 06 17 0E 23 0A 03"),                     # TEMP-2
    ("hts.temperature", "04 00 00 80 00 01"),                                          # TEMP-3
    ("hts.temperature", "04 6C 01 00 FF 01"),
    ("hts.temperature", "04 87 01 00 FF 02"),
    ("hts.temperature", "04 5E 01 00 FF 06"),
    ("hts.temperature", "04 6A 01 00 FF 09"),
    ("hts.temperature", "01 95 03 00 FF"),
    ("hts.temperature", "00 7F 01 00 FF"),
    ("wss.weight", "00 90 38"),                                                        # WS-1
    ("wss.weight", "0F 58 3E E8 07 06 17 0E 23 0A 01 E8 00 B7 02"),                    # WS-2
    ("wss.weight", "00 FF FF"),                                                        # WS-3
    ("wss.weight", "08 90 38 E5 00 F4 06"),                                            # WS-4
    ("wss.weight", "09 90 38 E5 00 44 00"),
)


def _hand_built() -> Iterator[tuple[str, Reading]]:
    """Readings no codec vector above makes: voiding and quality flags, corrected/unknown time, units."""
    cst = timezone(timedelta(hours=8))
    received = datetime(2024, 6, 23, 14, 36, 2, 120000, tzinfo=cst)
    device_time = datetime(2024, 6, 23, 14, 35, 10, tzinfo=cst)
    oximeter = DeviceIdentity(Transport.BLE, address="A4:C1:38:00:11:22", model="Nonin 3230")
    serial = DeviceIdentity(Transport.SERIAL, address="/dev/ttyACM0")
    uuid_ble = DeviceIdentity(Transport.BLE, address="6E400001-B5A3-F393-E0A9-E50E24DCCA9E", name="Pod")

    def make(kind: ReadingKind, device: DeviceIdentity, values: dict[Metric, Quantity], **kw: Any) -> Reading:
        kw.setdefault("measured_at", device_time)
        kw.setdefault("time_source", TimeSource.DEVICE)
        return Reading(kind=kind, device=device, received_at=received, values=values, **kw)

    spo2 = {Metric.SPO2: Quantity.of(96, Unit.PERCENT), Metric.PULSE_RATE: Quantity.of(72, Unit.PER_MINUTE)}
    for flags in ((StatusFlag.INVALID,), (StatusFlag.MEASUREMENT_UNAVAILABLE,), (StatusFlag.FINGER_OUT,),
                  (StatusFlag.SEARCHING,), (StatusFlag.EARLY_ESTIMATE, StatusFlag.QUESTIONABLE),
                  (StatusFlag.MEASUREMENT_ONGOING, StatusFlag.CALIBRATION_ONGOING),
                  (StatusFlag.TESTING_DATA,), (StatusFlag.DEMONSTRATION_DATA, StatusFlag.LOW_PERFUSION),
                  (StatusFlag.SENSOR_DISPLACED, StatusFlag.EXTENDED_DISPLAY_UPDATE, StatusFlag.POOR_SIGNAL),
                  tuple(StatusFlag)):
        yield "spo2 " + "+".join(f.value for f in flags), make(ReadingKind.SPO2, oximeter, spo2, status=flags)
    yield "spo2 pulse only", make(ReadingKind.SPO2, oximeter, {Metric.PULSE_RATE: Quantity.of("61.5", Unit.PER_MINUTE)},
                                  status=(StatusFlag.SENSOR_UNCONNECTED,))
    yield "spo2 absent sensor-off", make(ReadingKind.SPO2, serial, {
        Metric.SPO2: Quantity.missing(AbsentReason.SENSOR_OFF, Unit.PERCENT),
        Metric.PULSE_RATE: Quantity.missing(AbsentReason.OUT_OF_RANGE, Unit.PER_MINUTE)}, sequence=17,
        measured_at=received, time_source=TimeSource.RECEIPT)
    yield "spo2 unknown time", make(ReadingKind.SPO2, uuid_ble, spo2, measured_at=None,
                                    time_source=TimeSource.UNKNOWN)
    yield "spo2 receipt time ms", make(ReadingKind.SPO2, oximeter, spo2, time_source=TimeSource.RECEIPT,
                                       measured_at=datetime(2024, 6, 23, 6, 36, 2, 123456, tzinfo=UTC),
                                       clock_skew=timedelta(seconds=5))
    yield "spo2 empty", make(ReadingKind.SPO2, oximeter, {})
    yield "spo2 pre-2000 device time with microseconds", make(
        ReadingKind.SPO2, oximeter, spo2, measured_at=datetime(1999, 12, 31, 23, 59, 59, 500000, tzinfo=cst))
    yield "spo2 pre-2000 receipt time", Reading(
        kind=ReadingKind.SPO2, device=oximeter, received_at=datetime(1998, 5, 1, 1, 2, 3, 456789, tzinfo=UTC),
        values=spo2, measured_at=datetime(1998, 5, 1, 1, 2, 3, 456789, tzinfo=UTC), time_source=TimeSource.RECEIPT)
    dashed = DeviceIdentity(Transport.BLE, address="a4-c1-38-00-11-22", system_id="A4:C1:38:FF:FE:00:11:22")
    yield "spo2 device time, whole seconds across a zone", make(
        ReadingKind.SPO2, dashed, spo2, measured_at=datetime(2024, 3, 31, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")))
    yield "spo2 kPa", make(ReadingKind.SPO2, oximeter, {Metric.SPO2: Quantity.of(96, Unit.KPA)})
    bp = {Metric.SYSTOLIC: Quantity.of("16.00", Unit.KPA), Metric.DIASTOLIC: Quantity.of("10.6", Unit.KPA)}
    yield "bp kPa no mean, corrected ahead", make(ReadingKind.BLOOD_PRESSURE, serial, bp,
                                                  clock_skew=timedelta(seconds=-3661), sequence=4)
    yield "bp microsecond device time", make(
        ReadingKind.BLOOD_PRESSURE, oximeter, {Metric.SYSTOLIC: Quantity.of(120, Unit.MMHG),
                                               Metric.DIASTOLIC: Quantity.of("80.5", Unit.MMHG)},
        measured_at=datetime(2024, 6, 23, 14, 35, 10, 250000, tzinfo=cst), clock_skew=timedelta(0))
    yield "bp voided", make(ReadingKind.BLOOD_PRESSURE, oximeter, {
        Metric.SYSTOLIC: Quantity.of(400, Unit.MMHG), Metric.DIASTOLIC: Quantity.of(80, Unit.MMHG),
        Metric.MEAN_ARTERIAL: Quantity.of(90, Unit.KPA), Metric.PULSE_RATE: Quantity.of(70, Unit.PER_MINUTE)},
        status=(StatusFlag.INVALID, StatusFlag.IRREGULAR_PULSE))
    yield "bp missing diastolic", make(ReadingKind.BLOOD_PRESSURE, oximeter,
                                       {Metric.SYSTOLIC: Quantity.of(120, Unit.MMHG)})
    yield "bp wrong unit", make(ReadingKind.BLOOD_PRESSURE, oximeter, {
        Metric.SYSTOLIC: Quantity.of(120, Unit.PERCENT), Metric.DIASTOLIC: Quantity.of(80, Unit.MMHG)})
    for unit, value, site in ((Unit.FAHRENHEIT, "98.60", "mouth"), (Unit.FAHRENHEIT, "104.0", "Ear "),
                              (Unit.CELSIUS, "34.20", "body"), (Unit.CELSIUS, "37.00", ""),
                              (Unit.CELSIUS, "50.0", "toe")):
        yield f"temperature {value} {unit.value} {site!r}", make(
            ReadingKind.BODY_TEMPERATURE, serial, {Metric.BODY_TEMPERATURE: Quantity.of(value, unit)},
            body_site=site or None)
    yield "temperature searching", make(ReadingKind.BODY_TEMPERATURE, serial, {
        Metric.BODY_TEMPERATURE: Quantity.of("36.6", Unit.CELSIUS)}, status=(StatusFlag.SEARCHING,))
    yield "weight pounds inches", make(ReadingKind.BODY_WEIGHT, serial, {
        Metric.BODY_WEIGHT: Quantity.of("160.4", Unit.POUND), Metric.BODY_HEIGHT: Quantity.of("70.0", Unit.INCH),
        Metric.BMI: Quantity.of("23.0", Unit.KG_PER_M2)})
    yield "weight height only, metres", make(ReadingKind.BODY_WEIGHT, serial, {
        Metric.BODY_HEIGHT: Quantity.of("1.780", Unit.METRE)}, status=(StatusFlag.TESTING_DATA,))
    yield "weight absent, voided", make(ReadingKind.BODY_WEIGHT, serial, {
        Metric.BODY_WEIGHT: Quantity.missing(AbsentReason.MEASUREMENT_FAILED, Unit.KILOGRAM),
        Metric.BMI: Quantity.of("900", Unit.KG_PER_M2)}, status=(StatusFlag.MEASUREMENT_UNAVAILABLE,))
    yield "weight implausible bmi", make(ReadingKind.BODY_WEIGHT, serial, {
        Metric.BMI: Quantity.of("900", Unit.KG_PER_M2)})
    yield "weight empty", make(ReadingKind.BODY_WEIGHT, serial, {})
    yield "heart rate kind (no builder)", make(ReadingKind.HEART_RATE, serial, {
        Metric.PULSE_RATE: Quantity.of(70, Unit.PER_MINUTE)})


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _observations(reading: Reading, *, every_combination: bool) -> dict[str, Any]:
    """Patient x settings builds of one Reading (all, or held and resident by default settings, to keep the
    file small): texts and index columns, or the error."""
    out: dict[str, Any] = {}
    for patient_name, patient in PATIENTS if every_combination else PATIENTS[:2]:
        for settings_name, settings in SETTINGS if every_combination else SETTINGS[:1]:
            try:
                pending = build_observations(reading, patient, settings)
            except HealthhutError as exc:
                out[f"{patient_name}/{settings_name}"] = _error(exc)
                continue
            out[f"{patient_name}/{settings_name}"] = [
                {"json": fhir_json.dumps(p.resource), "local_key": p.local_key, "identifier": p.identifier,
                 "code": p.code, "mdc_code": p.mdc_code, "interpretation": p.interpretation}
                for p in pending]
    return out


def _reading_entry(reading: Reading, *, every_combination: bool = True) -> dict[str, Any]:
    return {"reading": reading_to_json(reading),
            "observations": _observations(reading, every_combination=every_combination),
            "device": fhir_json.dumps(device_resource(reading.device, kinds=[reading.kind]))}


def corpus() -> Iterator[dict[str, Any]]:
    """The corpus entries, in a fixed order; each is one JSON line of the golden file."""
    for codec_name, frame_hex in FRAMES:
        codec = get_codec(codec_name)
        frame = bytes.fromhex(frame_hex)
        for context_name, context in CONTEXTS:
            case = f"{codec_name} [{frame_hex}] {context_name}"
            entry: dict[str, Any] = {"case": case}
            try:
                decoded = codec.decode(frame)
            except HealthhutError as exc:
                entry["decode_error"] = _error(exc) + f" at {getattr(exc, 'offset', None)}"
                yield entry
                continue
            entry["decoded"] = json.dumps(describe(decoded), ensure_ascii=False)
            try:
                readings = codec.readings(decoded, context)
            except HealthhutError as exc:
                entry["readings_error"] = _error(exc)
                yield entry
                continue
            entry["readings"] = [_reading_entry(reading, every_combination=context is CONTEXTS[0][1])
                                 for reading in readings]
            yield entry
    for name, reading in _hand_built():
        yield {"case": f"hand-built {name}", "readings": [_reading_entry(reading)]}
    for patient_name, patient in PATIENTS:
        if patient is not None:
            yield {"case": f"patient {patient_name}", "json": fhir_json.dumps(patient_resource(patient))}
    for site, site_name in (("hut-07", None), ("hut-highland", " Highland hut\x00")):
        yield {"case": f"gateway {site}", "json": fhir_json.dumps(gateway_resource(site, site_name))}


def corpus_lines() -> list[str]:
    return [json.dumps(entry, ensure_ascii=False, sort_keys=True) for entry in corpus()]


def test_corpus_output_is_byte_identical_to_the_golden_file() -> None:
    expected = GOLDEN.read_text(encoding="utf-8").splitlines()
    actual = corpus_lines()
    assert len(actual) == len(expected), "the corpus changed size: regenerate only for an intended change"
    for got, want in zip(actual, expected, strict=True):
        if got != want:   # show one case, not a 400-line diff
            assert json.loads(got) == json.loads(want), json.loads(want)["case"]
            pytest.fail(f"{json.loads(want)['case']}: same content, different bytes")


def test_corpus_covers_every_builder_outcome() -> None:
    """The corpus is only a guard if it reaches values, absences, flags, errors, held and resident builds."""
    text = GOLDEN.read_text(encoding="utf-8")
    for needle in ('\\"dataAbsentReason\\"', '\\"interpretation\\"', "ReadingError", "DecodeError",
                   '\\"code\\":\\"HH\\"', '\\"code\\":\\"LL\\"', "original-device-value", "time-quality",
                   "PhdBitsEnumerationObservation", "HTEST", "bodySite", "68193", "-seq17",
                   '"identifier": null', "Zoë-42"):
        assert needle in text, needle


def _containers(value: Any, path: str) -> Iterator[tuple[int, str]]:
    if isinstance(value, dict | list):
        yield id(value), path
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            yield from _containers(item, f"{path}.{key}")


def _all_built_resources() -> list[dict[str, Any]]:
    readings = [reading for _, reading in _hand_built()]
    for codec_name, frame_hex in FRAMES:
        codec = get_codec(codec_name)
        for _, context in CONTEXTS:
            with contextlib.suppress(HealthhutError):
                readings.extend(codec.readings(codec.decode(bytes.fromhex(frame_hex)), context))
    resources: list[dict[str, Any]] = []
    for reading in readings:
        for _, patient in PATIENTS:
            with contextlib.suppress(HealthhutError):
                resources.extend(p.resource for p in build_observations(reading, patient, SETTINGS[0][1]))
    return resources


def test_no_dict_or_list_is_shared_between_or_within_built_resources() -> None:
    """Cached templates must be copied, never handed out: a caller may mutate one resource (add a note, set a
    subject) and must not change another, nor the template. All resources stay alive, so ids are unique."""
    resources = _all_built_resources()
    seen: dict[int, str] = {}
    for number, resource in enumerate(resources):
        for ident, path in _containers(resource, f"resource {number}"):
            assert ident not in seen, f"{path} is the same object as {seen[ident]}"
            seen[ident] = path


def test_mutating_built_resources_changes_no_later_build() -> None:
    """Empty every dict and list of a whole corpus build, then build again: the output is still the golden."""
    for resource in _all_built_resources():
        for container in list(_walk(resource)):
            container.clear()
    test_corpus_output_is_byte_identical_to_the_golden_file()


def _walk(value: Any) -> Iterator[dict[str, Any] | list[Any]]:
    if isinstance(value, dict | list):
        for item in list(value.values() if isinstance(value, dict) else value):
            yield from _walk(item)
        yield value


if __name__ == "__main__":   # regenerate: only when an output change is intended and reviewed
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {GOLDEN}\n")
