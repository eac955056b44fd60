"""EDF/EDF+ home sleep test files -> NightRecording (read with pyedflib; the only module importing it).

The header is checked by hand first (reference serial-and-sleep §3.2) so that a truncated or malformed file
gives one clear SleepDataError instead of a C-library error code, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from pathlib import Path

import numpy as np

from healthhut.errors import SleepDataError
from healthhut.readings import Unit
from healthhut.records.sleep.series import Channel, NightRecording, ScoredEvent, to_one_hertz

HEADER_BYTES = 256

# matched case-insensitively after trimming; extend when a new device export is seen
SIGNAL_LABELS: dict[str, tuple[str, ...]] = {
    "spo2": ("spo2", "sao2", "oxygen saturation", "spo2 %", "sat"),
    "pulse": ("pulse", "pr", "hr", "pulse rate", "heart rate"),
    "airflow": ("flow", "nasal pressure", "nasalp", "airflow", "thermistor", "resp oro-nasal",
                "nasal flow", "pflow"),
    "effort": ("thor", "chest", "abdo", "abdomen", "rip thor", "rip abdom", "thorax", "effort", "thoracic",
               "abdominal", "rip sum"),
}

ANNOTATION_KINDS: dict[str, str] = {
    "obstructive apnea": "obstructive apnea", "oa": "obstructive apnea",
    "central apnea": "central apnea", "ca": "central apnea",
    "mixed apnea": "mixed apnea", "ma": "mixed apnea",
    "apnea": "unclassified apnea",
    "hypopnea": "hypopnea", "obstructive hypopnea": "hypopnea", "central hypopnea": "hypopnea",
    "desaturation": "desaturation", "spo2 desaturation": "desaturation", "oxygen desaturation": "desaturation",
    "arousal": "arousal", "rera": "arousal",
    "recording starts": "marker", "recording ends": "marker", "lights off": "marker", "lights on": "marker",
    "csr start": "periodic breathing", "csr end": "periodic breathing",
}


def _field(header: bytes, start: int, size: int) -> str:
    return header[start:start + size].decode("ascii", errors="replace").strip()


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SleepDataError(f"not an EDF file: the {what} field is not a number") from None


def check_header(path: Path) -> str:
    """Validate the fixed header and the file size; returns the reserved field ("EDF+C", "EDF+D" or "")."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            main = fh.read(HEADER_BYTES)
            if len(main) < HEADER_BYTES:
                raise SleepDataError(f"not an EDF file: {size} bytes is shorter than the 256-byte header")
            if main[:8] not in (b"0       ", b"\xffBIOSEMI"):
                raise SleepDataError("not an EDF file: the version field is not '0'")
            sample_bytes = 3 if main[0] == 0xFF else 2
            header_size = int(_number(_field(main, 184, 8), "header size"))
            records = int(_number(_field(main, 236, 8), "number of data records"))
            ns = int(_number(_field(main, 252, 4), "number of signals"))
            if ns <= 0 or header_size != HEADER_BYTES * (ns + 1):
                raise SleepDataError("malformed EDF header: header size does not match the number of signals")
            signal_headers = fh.read(HEADER_BYTES * ns)
    except OSError as exc:
        raise SleepDataError(f"cannot read the recording file: {exc.strerror or exc}") from None
    if len(signal_headers) < HEADER_BYTES * ns:
        raise SleepDataError("truncated EDF file: the signal headers are incomplete")
    if records < 0:
        raise SleepDataError("the EDF file is still being recorded (-1 data records); export it again")
    per_record_offset = ns * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80)
    per_record = [int(_number(_field(signal_headers, per_record_offset + 8 * i, 8), "samples per record"))
                  for i in range(ns)]
    expected = header_size + records * sum(per_record) * sample_bytes
    if size < expected:
        raise SleepDataError(f"truncated EDF file: {size} bytes, the header promises {expected}",
                             advice="copy the file again from the device or its PC software")
    return _field(main, 192, 44)


def _role_indices(labels: list[str], overrides: Mapping[str, str] | None) -> dict[str, int]:
    lowered = [label.strip().lower() for label in labels]
    found: dict[str, int] = {}
    for role, names in SIGNAL_LABELS.items():
        wanted = overrides.get(role) if overrides else None
        if wanted is not None:
            if wanted.strip().lower() not in lowered:
                raise SleepDataError(f"no signal labelled {wanted!r} in the file (signals: {', '.join(labels)})")
            found[role] = lowered.index(wanted.strip().lower())
            continue
        for i, label in enumerate(lowered):
            if label in names:
                found[role] = i
                break
    return found


def normalise_annotation(text: str) -> str:
    return ANNOTATION_KINDS.get(text.strip().lower(), "other")


def read_edf(path: str | Path, *, tz: tzinfo, channels: Mapping[str, str] | None = None) -> NightRecording:
    """Read an EDF/EDF+ recording. `tz` is the zone the device clock ran in (EDF times carry no offset);
    `channels` overrides the label table per role ("spo2", "pulse", "airflow", "effort")."""
    import pyedflib  # heavy C extension: only when a file is actually imported

    path = Path(path)
    reserved = check_header(path)
    if reserved.startswith("EDF+D") or reserved.startswith("BDF+D"):
        raise SleepDataError("discontinuous EDF+D recordings are not supported; export as one contiguous file")
    try:
        reader = pyedflib.EdfReader(str(path))
    except OSError as exc:
        raise SleepDataError(f"malformed EDF file: {exc}") from None
    try:
        labels = list(reader.getSignalLabels())
        roles = _role_indices(labels, channels)
        if "spo2" not in roles and "airflow" not in roles:
            raise SleepDataError(f"no SpO2 or airflow channel found (signals: {', '.join(labels)})",
                                 advice="name the channels with --channel spo2=LABEL")
        start_naive: datetime = reader.getStartdatetime()
        equipment = str(reader.getEquipment() or "").strip()
        chans: dict[str, Channel] = {}
        for role, index in roles.items():
            rate = float(reader.getSampleFrequency(index))
            samples = np.asarray(reader.readSignal(index), dtype=np.float64)
            if role in ("spo2", "pulse"):
                samples = to_one_hertz(samples, rate)
                rate = 1.0
            unit = {"spo2": Unit.PERCENT, "pulse": Unit.PER_MINUTE}.get(role, Unit.ONE)
            chans[role] = Channel(samples, rate, unit, labels[index])
        onsets, durations, texts = reader.readAnnotations()
    except SleepDataError:
        raise
    except Exception as exc:  # pyedflib raises bare OSError/ValueError/IndexError for damaged data
        raise SleepDataError(f"malformed EDF file: {type(exc).__name__}") from None
    finally:
        reader.close()
    events = tuple(
        ScoredEvent(float(onset), None if duration < 0 else float(duration), normalise_annotation(str(text)),
                    str(text))
        for onset, duration, text in zip(onsets, durations, texts, strict=True))
    return NightRecording(start=start_naive.replace(tzinfo=tz), spo2=chans.get("spo2"), pulse=chans.get("pulse"),
                          airflow=chans.get("airflow"), effort=chans.get("effort"), scored_events=events,
                          source="edf", equipment=equipment if equipment not in ("", "X") else None)


def write_edf(path: str | Path, night: NightRecording, *,
              annotations: list[tuple[float, float | None, str]] | None = None) -> None:
    """Write a night as EDF+C (SpO2, Pulse, Flow, Thor), for fixtures, demos and the device emulators.

    Invalid SpO2/pulse samples (NaN) are written as 0, the value HSAT exports use for "no data".
    """
    import pyedflib

    signals: list[np.ndarray] = []
    headers: list[dict[str, str | int | float | None]] = []
    for channel, label, dimension, low, high in ((night.spo2, "SpO2", "%", 0, 255),
                                                  (night.pulse, "Pulse", "bpm", 0, 255)):
        if channel is not None:
            signals.append(np.nan_to_num(channel.samples, nan=0.0))
            headers.append({"label": label, "dimension": dimension, "sample_frequency": channel.rate_hz,
                            "physical_min": low, "physical_max": high, "digital_min": low, "digital_max": high,
                            "transducer": "", "prefilter": ""})
    for wave, default_label in ((night.airflow, "Flow"), (night.effort, "Thor")):
        if wave is None:
            continue
        values = np.nan_to_num(wave.samples, nan=0.0)
        bound = float(np.ceil(max(float(np.abs(values).max(initial=0.0)), 1e-3) * 105) / 100)  # fits 8 chars
        signals.append(values)
        headers.append({"label": wave.label or default_label, "dimension": "", "physical_min": -bound,
                        "physical_max": bound, "digital_min": -32768, "digital_max": 32767,
                        "sample_frequency": wave.rate_hz, "transducer": "", "prefilter": ""})
    if not signals:
        raise SleepDataError("nothing to write: the night has no channel")
    writer = pyedflib.EdfWriter(str(path), len(signals), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setSignalHeaders(headers)
        writer.setStartdatetime(night.start.replace(tzinfo=None))
        if night.equipment:
            writer.setEquipment(night.equipment)
        for onset, duration, text in annotations or []:
            writer.writeAnnotation(onset, -1 if duration is None else duration, text)
        writer.writeSamples(signals)
    finally:
        writer.close()
