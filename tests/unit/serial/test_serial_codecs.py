"""Serial codecs against the reference's example frames (written out in hex), round trips and Readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from healthhut.drivers.codecs import berrymed, cms50_legacy, cms50_v7, pc300
from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.crc8 import crc8_maxim
from healthhut.drivers.codecs.oximeter_sample import series_reading
from healthhut.drivers.codecs.registry import get_codec
from healthhut.errors import DecodeError
from healthhut.readings import (
    AbsentReason,
    DeviceIdentity,
    Metric,
    ReadingKind,
    StatusFlag,
    TimeSource,
    Transport,
)

H = bytes.fromhex
RECEIVED = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
CONTEXT = ReadingContext(DeviceIdentity(Transport.SERIAL, address="/dev/ttyUSB0", model="CMS50"), RECEIVED, UTC)


def test_crc8_maxim_table_and_reference_frames() -> None:
    assert [crc8_maxim(bytes((i,))) for i in range(4)] == [0x00, 0x5E, 0xBC, 0xE2]
    for frame in ("AA 55 40 02 01 29", "AA 55 43 07 01 00 96 72 60 4E 4C", "AA 55 0F 07 02 30 38 42 4A D0 AD",
                  "AA 55 F0 02 81 19"):
        assert crc8_maxim(H(frame)) == 0


@pytest.mark.parametrize(("frame", "fields"), [
    ("01 80 C6 C6 87 CB E2 FD 80", dict(signal_strength=6, beep=True, pleth=70, bar_graph=7, pulse_rate=75,
                                        spo2=98, pi_raw=125, probe_error=False)),
    ("01 88 85 BC 86 A0 DD AC 81", dict(pulse_rate=160, spo2=93, pi_raw=300)),
    ("01 E9 80 C0 90 FF FF FF FF", dict(probe_error=True, pleth=0x40, pi_invalid=True, pulse_rate=0xFF,
                                        spo2=0x7F, pi_raw=0xFFFF)),
    ("01 E0 85 D5 9A BD E3 FF FF", dict(signal_strength=5, pleth=85, bar_graph=10, pi_invalid=True,
                                        pulse_rate=61, spo2=99)),
])
def test_v7_live_vectors_decode_and_reencode(frame: str, fields: dict[str, object]) -> None:
    decoded = cms50_v7.decode_packet(H(frame))
    assert isinstance(decoded, cms50_v7.V7LiveData)
    for name, value in fields.items():
        assert getattr(decoded, name) == value, name
    assert cms50_v7.encode_live(decoded) == H(frame)


def test_v7_commands_match_the_reference() -> None:
    assert cms50_v7.command(cms50_v7.CMD_START_LIVE) == H("7D 81 A1 80 80 80 80 80 80")
    assert cms50_v7.command(cms50_v7.CMD_KEEP_ALIVE) == H("7D 81 AF 80 80 80 80 80 80")
    assert cms50_v7.command(cms50_v7.CMD_SET_DATE, 20, 24, 5, 17, 5) == H("7D 81 B2 94 98 85 91 85 80")
    assert cms50_v7.command(cms50_v7.CMD_SET_TIME, 21, 30, 5) == H("7D 81 B1 95 9E 85 80 80 80")


def test_v7_stored_packets() -> None:
    assert cms50_v7.decode_packet(H("08 80 80 80 8F D0 81 80")) == cms50_v7.V7StoredLength(0, 0, 86031)
    assert cms50_v7.decode_packet(H("07 80 80 80 94 98 85 91")) == cms50_v7.V7StoredDate(0, 0, 2024, 5, 17)
    assert cms50_v7.decode_packet(H("12 80 80 80 96 A9 89 80")) == cms50_v7.V7StoredTime(0, 0, 22, 41, 9)
    stored = cms50_v7.decode_packet(H("0F A0 E0 C0 DF C2 FF FF"))
    assert stored == cms50_v7.V7StoredSamples((cms50_v7.V7StoredSample(96, 64), cms50_v7.V7StoredSample(95, 66),
                                               cms50_v7.V7StoredSample(0x7F, 0xFF)))
    assert cms50_v7.encode_stored_samples([(96, 64), (95, 66), (0x7F, 0xFF)]) == H("0F A0 E0 C0 DF C2 FF FF")
    with_pi = cms50_v7.decode_packet(H("09 84 E1 BA C8 80"))
    assert with_pi == cms50_v7.V7StoredSamples((cms50_v7.V7StoredSample(97, 58, 200),))
    assert cms50_v7.decode_packet(H("0C 80")) == cms50_v7.V7Feedback(None, None)
    assert cms50_v7.encode_stored_length(0, 0, 86031) == H("08 80 80 80 8F D0 81 80")


@pytest.mark.parametrize(("frame", "offset"), [("01 80 C6", 0), ("01 80 46 C6 87 CB E2 FD 80", 2),
                                               ("81 80", 0), ("13 80 80", 0)])
def test_v7_bad_packets_name_the_offset(frame: str, offset: int) -> None:
    with pytest.raises(DecodeError) as caught:
        cms50_v7.decode_packet(H(frame))
    assert caught.value.offset == offset


def test_legacy_vectors() -> None:
    live = cms50_legacy.decode_packet(H("C4 3C 05 48 61"))
    assert isinstance(live, cms50_legacy.LegacyLiveData)
    assert (live.beep, live.signal_strength, live.pleth, live.bar_graph, live.pulse_rate, live.spo2) == (
        True, 4, 60, 5, 72, 97)
    assert cms50_legacy.decode_packet(H("83 20 46 02 5F")).pulse_rate == 130  # type: ignore[union-attr]
    assert cms50_legacy.decode_packet(H("F2 80 00")) == cms50_legacy.LegacyUploadHeader(0, 0)
    assert cms50_legacy.decode_packet(H("85 A2 7F")) == cms50_legacy.LegacyUploadLength(86400)
    assert cms50_legacy.decode_packet(H("F0 C8 61")) == cms50_legacy.LegacyRecord(72, 97)
    assert cms50_legacy.decode_packet(H("F1 8C 5B")) == cms50_legacy.LegacyRecord(140, 91)
    assert cms50_legacy.encode_upload_length(28800) == H("85 A2 7F")
    assert cms50_legacy.encode_record(140, 91) == H("F1 8C 5B")
    assert cms50_legacy.encode_live(live) == H("C4 3C 05 48 61")


def test_legacy_invalid_sample_is_finger_out() -> None:
    codec = cms50_legacy.Cms50LegacyCodec()
    (reading,) = codec.readings(codec.decode(H("90 00 10 00 00")), CONTEXT)
    assert StatusFlag.FINGER_OUT in reading.status
    assert reading.values[Metric.SPO2].absent is AbsentReason.SENSOR_OFF
    assert reading.values[Metric.PULSE_RATE].absent is AbsentReason.SENSOR_OFF


def test_bci_vectors() -> None:
    beat = berrymed.decode_packet(H("C7 58 09 44 62"))
    assert beat == berrymed.BciSample(True, False, False, 7, 88, False, False, 9, 68, 98)
    assert berrymed.decode_packet(H("85 28 44 48 5E")).pulse_rate == 200  # type: ignore[union-attr]
    no_finger = berrymed.decode_packet(H("9F 00 50 7F 7F"))
    assert isinstance(no_finger, berrymed.BciSample) and no_finger.no_finger and no_finger.pulse_rate == 0xFF
    assert berrymed.decode_packet(H("FF 56 31 2E 34")) == berrymed.BciVersion("software", "V1.4")


def test_live_reading_normalisation() -> None:
    codec = cms50_v7.Cms50V7Codec()
    (good,) = codec.readings(codec.decode(H("01 80 C6 C6 87 CB E2 FD 80")), CONTEXT)
    assert good.kind is ReadingKind.SPO2 and good.time_source is TimeSource.RECEIPT
    assert good.measured_at == RECEIVED and good.received_at == RECEIVED
    assert good.values[Metric.SPO2].value == Decimal(98)
    assert good.values[Metric.PULSE_RATE].value == Decimal(75)
    assert good.values[Metric.PULSE_AMPLITUDE_INDEX].value == Decimal("1.25")
    assert good.device.transport is Transport.SERIAL and good.raw == H("01 80 C6 C6 87 CB E2 FD 80")
    (out,) = codec.readings(codec.decode(H("01 E9 80 C0 90 FF FF FF FF")), CONTEXT)
    assert out.status == {StatusFlag.FINGER_OUT}
    assert not out.values[Metric.SPO2].present and out.values[Metric.SPO2].absent is AbsentReason.SENSOR_OFF
    searching = cms50_v7.encode_live(cms50_v7.V7LiveData(3, False, False, False, False, 20, True, 2, False,
                                                         75, 98, 125))
    (stale,) = codec.readings(codec.decode(searching), CONTEXT)
    assert stale.status == {StatusFlag.SEARCHING} and not stale.values[Metric.SPO2].present
    low = cms50_v7.encode_live(cms50_v7.V7LiveData(3, False, False, False, False, 20, False, 2, False,
                                                   75, 40, 125))
    (artefact,) = codec.readings(codec.decode(low), CONTEXT)
    assert artefact.values[Metric.SPO2].absent is AbsentReason.OUT_OF_RANGE


def test_series_reading_with_and_without_a_device_clock() -> None:
    zone = timezone(timedelta(hours=8))
    start = datetime(2026, 11, 27, 22, 41, 9, tzinfo=zone)
    timed = series_reading(spo2=[97.0, None], pulse_rate=[72.0, None], start=start, period=timedelta(seconds=1),
                           context=CONTEXT)
    assert timed.kind is ReadingKind.OXIMETRY_SERIES and timed.measured_at == start
    assert timed.series[Metric.SPO2].samples == (97.0, None)
    assert timed.time_source is TimeSource.DEVICE
    unknown = series_reading(spo2=[97.0] * 60, pulse_rate=[72.0] * 60, start=None, period=timedelta(seconds=1),
                             context=CONTEXT)
    assert unknown.time_source is TimeSource.UNKNOWN and unknown.measured_at is None
    assert StatusFlag.CLOCK_NOT_SET in unknown.status
    assert unknown.series[Metric.PULSE_RATE].end == RECEIVED


@pytest.mark.parametrize(("frame", "expected"), [
    ("AA 55 43 07 01 00 96 72 60 4E 4C", pc300.BpResult(150, 114, 96, 78, False)),
    ("AA 55 43 07 01 80 BA 89 70 68 BB", pc300.BpResult(186, 137, 112, 104, True)),
    ("AA 55 43 03 02 03 2B", pc300.BpError(3, False)),
    ("AA 55 43 03 02 86 98", pc300.BpError(6, True)),
    ("AA 55 40 02 01 29", pc300.BpControlEcho(pc300.BP_START, b"")),
    ("AA 55 40 02 02 CB", pc300.BpControlEcho(pc300.BP_STOP, b"")),
])
def test_pc300_vectors(frame: str, expected: object) -> None:
    assert pc300.decode_frame(H(frame)) == expected


def test_pc300_builders_match_the_reference() -> None:
    assert H("AA 55 40 02 01 29") == pc300.START_MEASUREMENT
    assert H("AA 55 40 02 02 CB") == pc300.STOP_MEASUREMENT
    assert H("AA 55 FF 02 01 CA") == pc300.ASK_DEVICE_NAME
    assert pc300.encode_error(6, krk_module=True) == H("AA 55 43 03 02 86 98")
    assert pc300.encode_result(pc300.BpResult(186, 137, 112, 104, True)) == H("AA 55 43 07 01 80 BA 89 70 68 BB")
    cuff = pc300.decode_frame(pc300.encode_cuff_pressure(0x1A5, heartbeat=True))
    assert cuff == pc300.CuffPressure(0x1A5, True)


def test_pc300_cuff_offset_is_configurable() -> None:
    frame = pc300.encode_command(pc300.TOKEN_CUFF, 0x00, bytes((0x7E, 0x00, 0x64)))  # p0/p1 one byte later
    assert pc300.decode_frame(frame, pc300.Pc300Layout(cuff_pressure_offset=6)) == pc300.CuffPressure(100, False)


def test_pc300_readings_for_result_and_error() -> None:
    codec = pc300.Pc300Codec()
    (result,) = codec.readings(codec.decode(H("AA 55 43 07 01 80 BA 89 70 68 BB")), CONTEXT)
    assert result.kind is ReadingKind.BLOOD_PRESSURE
    assert result.values[Metric.SYSTOLIC].value == 186 and result.values[Metric.DIASTOLIC].value == 112
    assert result.values[Metric.MEAN_ARTERIAL].value == 137 and result.values[Metric.PULSE_RATE].value == 104
    assert result.status == {StatusFlag.IRREGULAR_PULSE}
    (failed,) = codec.readings(codec.decode(pc300.encode_error(1)), CONTEXT)
    assert all(q.absent is AbsentReason.MEASUREMENT_FAILED for q in failed.values.values())
    assert failed.status == {StatusFlag.CUFF_TOO_LOOSE}
    assert codec.readings(codec.decode(pc300.encode_cuff_pressure(120)), CONTEXT) == []


def test_pc300_bad_crc_is_a_decode_error() -> None:
    with pytest.raises(DecodeError) as caught:
        pc300.decode_frame(H("AA 55 40 02 01 28"))
    assert caught.value.offset == 5


@pytest.mark.parametrize(("name", "stream", "count"), [
    ("cms50.v7", "00 FF 01 80 C6 C6 87 CB E2 FD 80 13 37 0C 80 01 88 85 BC 86 A0 DD AC 81", 3),
    ("cms50.legacy", "11 C4 3C 05 48 61 22 F2 80 00 F2 80 00 F2 80 00 85 A2 7F F0 C8 61 33", 6),
    ("berrymed.bci", "C7 58 09 44 62 00 85 28 44 48 5E 9F 9F 00 50 7F 7F", 3),
    ("pc300", "00 AA 55 40 02 01 29 AA 55 43 07 01 00 96 72 60 4E 4C FF AA 55 43 03 02 03 2B", 3),
])
def test_registered_codecs_find_every_frame_in_a_hex_stream(name: str, stream: str, count: int) -> None:
    codec = get_codec(name)
    frames = codec.frames(H(stream))
    assert len(frames) == count
    for frame in frames:
        codec.decode(frame.data)


def test_recording_start_helpers() -> None:
    from healthhut.drivers.codecs.oximeter_sample import device_start, start_from_hour_minute, trim_padding

    zone = timezone(timedelta(hours=8))
    assert device_start(2026, 11, 27, 22, 41, 9, zone) == datetime(2026, 11, 27, 22, 41, 9, tzinfo=zone)
    assert device_start(0, 0, 0, 0, 0, 0, zone) is None
    estimated = datetime(2026, 11, 28, 6, 0, tzinfo=zone)      # download time minus duration
    assert start_from_hour_minute([(5, 59)] * 3, estimated) == datetime(2026, 11, 28, 5, 59, tzinfo=zone)
    assert start_from_hour_minute([(22, 30), (22, 30), (2, 30)], estimated) == datetime(
        2026, 11, 27, 22, 30, tzinfo=zone)                       # the corrupted trio loses; yesterday evening
    assert start_from_hour_minute([(0, 0)] * 3, estimated) is None
    assert start_from_hour_minute([], estimated) is None
    spo2: list[float | None] = [97.0, None, None]
    pulse: list[float | None] = [72.0, None, None]
    trim_padding(spo2, pulse, 1)
    assert spo2 == [97.0] and pulse == [72.0]
    far: list[float | None] = [None] * 6
    trim_padding(far, list(far), 1)     # an expected count far off: keep everything
    assert len(far) == 6
