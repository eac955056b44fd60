"""Creative PC-300/PC-303 kiosk board, blood-pressure part: `AA 55` frames with CRC-8/MAXIM.

Frame: `AA 55 token LEN type payload CRC`. The BP tokens are 0x40 (start/stop/mode, echoed), 0x42 (live
cuff pressure), 0x43 (result type 0x01, error type 0x02). Facts the reference marks uncertain are
parameters of `Pc300Layout`, with the documented defaults (see docs in `serial_blood_pressure`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from healthhut.drivers.codecs.base import Frame, ReadingContext
from healthhut.drivers.codecs.crc8 import crc8_maxim
from healthhut.drivers.codecs.framing import AA55Framer, aa55_frame
from healthhut.errors import DecodeError
from healthhut.readings import (
    AbsentReason,
    Metric,
    Quantity,
    Reading,
    ReadingKind,
    StatusFlag,
    TimeSource,
    Unit,
)

CODEC = "pc300"
TOKEN_DEVICE, TOKEN_BP_CONTROL, TOKEN_CUFF, TOKEN_BP_RESULT = 0xFF, 0x40, 0x42, 0x43
BP_START, BP_STOP, BP_MODE = 0x01, 0x02, 0x03
RESULT, ERROR = 0x01, 0x02

# BP error codes (bits 6..0 of the error byte); 7..14 are reported by KRK modules only.
BP_ERRORS: dict[int, str] = {
    1: "cuff not inflated to 30 mmHg within 7 s (cuff loose)", 2: "over-pressure protection (>295 mmHg)",
    3: "no valid pulse", 4: "too much interference (movement, talking)", 5: "result out of range",
    6: "leak", 7: "self-test failed", 8: "valve or pressure error", 9: "signal saturated (motion)",
    10: "leak found in leak test", 11: "fault at start-up", 12: "measurement timeout", 14: "battery low",
}
# Which error codes say something about how the measurement was taken (BLS-like status flags).
ERROR_FLAGS: dict[int, StatusFlag] = {1: StatusFlag.CUFF_TOO_LOOSE, 4: StatusFlag.BODY_MOVEMENT,
                                      9: StatusFlag.BODY_MOVEMENT}


@dataclass(frozen=True, slots=True)
class Pc300Layout:
    """Uncertain layout facts (reference §2.1 [?], §8 question 2), configurable, with documented defaults.

    `cuff_pressure_offset`: frame index of p0 in a 0x42 frame; the SDK reads p0/p1 from frame bytes 5/6
    (the meaning of byte 4 is not documented), so the default is 5.
    """

    cuff_pressure_offset: int = 5


@dataclass(frozen=True, slots=True)
class Pc300Frame:
    token: int
    kind: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class BpControlEcho:
    command: int          # BP_START, BP_STOP, BP_MODE
    payload: bytes


@dataclass(frozen=True, slots=True)
class CuffPressure:
    """Live cuff pressure during a measurement: for display, never a Reading."""

    pressure_mmhg: int
    heartbeat: bool


@dataclass(frozen=True, slots=True)
class BpResult:
    systolic: int
    mean_arterial: int
    diastolic: int
    pulse_rate: int
    irregular_heartbeat: bool


@dataclass(frozen=True, slots=True)
class BpError:
    code: int
    krk_module: bool      # bit 7: 0 = JXH-type module, 1 = KRK

    @property
    def reason(self) -> str:
        return BP_ERRORS.get(self.code, f"unknown error code {self.code}")


Pc300Packet = BpControlEcho | CuffPressure | BpResult | BpError | Pc300Frame


def split_frame(frame: bytes) -> Pc300Frame:
    """Check the framing and CRC of one frame and return its token, type and payload."""
    if len(frame) < 6 or frame[0] != 0xAA or frame[1] != 0x55:
        raise DecodeError("not an AA 55 frame", offset=0, codec=CODEC)
    if frame[3] + 4 != len(frame):
        raise DecodeError(f"LEN says {frame[3] + 4} bytes, frame has {len(frame)}", offset=3, codec=CODEC)
    if crc8_maxim(frame) != 0:
        raise DecodeError("CRC-8/MAXIM mismatch", offset=len(frame) - 1, codec=CODEC)
    return Pc300Frame(frame[2], frame[4], frame[5:-1])


def decode_frame(frame: bytes, layout: Pc300Layout = Pc300Layout()) -> Pc300Packet:
    parts = split_frame(frame)
    token, kind, payload = parts.token, parts.kind, parts.payload
    if token == TOKEN_BP_CONTROL:
        return BpControlEcho(kind, payload)
    if token == TOKEN_CUFF:
        at = layout.cuff_pressure_offset
        if len(frame) < at + 3:
            raise DecodeError("cuff pressure frame too short", offset=at, codec=CODEC)
        p0, p1 = frame[at], frame[at + 1]
        return CuffPressure((p0 & 0x0F) << 8 | p1, bool(p0 & 0x10))
    if token == TOKEN_BP_RESULT and kind == RESULT:
        if len(payload) < 5:
            raise DecodeError("BP result needs 5 bytes", offset=5, codec=CODEC)
        r = payload
        return BpResult((r[0] & 0x7F) << 8 | r[1], r[2], r[3], r[4], bool(r[0] & 0x80))
    if token == TOKEN_BP_RESULT and kind == ERROR:
        if not payload:
            raise DecodeError("BP error needs a code byte", offset=5, codec=CODEC)
        return BpError(payload[0] & 0x7F, bool(payload[0] & 0x80))
    return parts


def encode_command(token: int, kind: int, payload: bytes = b"") -> bytes:
    return aa55_frame(token, kind, payload)


START_MEASUREMENT = aa55_frame(TOKEN_BP_CONTROL, BP_START)
STOP_MEASUREMENT = aa55_frame(TOKEN_BP_CONTROL, BP_STOP)
ASK_DEVICE_NAME = aa55_frame(TOKEN_DEVICE, 0x01)


def encode_cuff_pressure(pressure_mmhg: int, heartbeat: bool = False) -> bytes:
    p0 = (pressure_mmhg >> 8 & 0x0F) | heartbeat << 4
    return aa55_frame(TOKEN_CUFF, 0x01, bytes((p0, pressure_mmhg & 0xFF)))


def encode_result(result: BpResult) -> bytes:
    r0 = (result.systolic >> 8 & 0x7F) | result.irregular_heartbeat << 7
    return aa55_frame(TOKEN_BP_RESULT, RESULT, bytes((r0, result.systolic & 0xFF, result.mean_arterial,
                                                      result.diastolic, result.pulse_rate)))


def encode_error(code: int, krk_module: bool = False) -> bytes:
    return aa55_frame(TOKEN_BP_RESULT, ERROR, bytes(((code & 0x7F) | krk_module << 7,)))


def bp_reading(decoded: BpResult | BpError, context: ReadingContext, raw: bytes) -> Reading:
    """A result → BLOOD_PRESSURE Reading; an error → the same kind with every value absent.

    A failed measurement is kept as a Reading (values MEASUREMENT_FAILED, status flags where the code maps to
    one, the error byte in `raw`) rather than raised: staff should see that an attempt failed and why, and
    the driver's stream goes on. The board has no clock, so the time is the receive time.
    """
    status: set[StatusFlag] = set()
    if isinstance(decoded, BpResult):
        values = {
            Metric.SYSTOLIC: Quantity.of(decoded.systolic, Unit.MMHG),
            Metric.DIASTOLIC: Quantity.of(decoded.diastolic, Unit.MMHG),
            Metric.MEAN_ARTERIAL: Quantity.of(decoded.mean_arterial, Unit.MMHG),
            Metric.PULSE_RATE: (Quantity.of(decoded.pulse_rate, Unit.PER_MINUTE) if decoded.pulse_rate
                                else Quantity.missing(AbsentReason.NOT_A_NUMBER, Unit.PER_MINUTE)),
        }
        if decoded.irregular_heartbeat:
            status.add(StatusFlag.IRREGULAR_PULSE)
    else:
        failed = AbsentReason.MEASUREMENT_FAILED
        values = {m: Quantity.missing(failed, Unit.MMHG)
                  for m in (Metric.SYSTOLIC, Metric.DIASTOLIC, Metric.MEAN_ARTERIAL)}
        values[Metric.PULSE_RATE] = Quantity.missing(failed, Unit.PER_MINUTE)
        flag = ERROR_FLAGS.get(decoded.code)
        if flag is not None:
            status.add(flag)
    return Reading(kind=ReadingKind.BLOOD_PRESSURE, device=context.device, received_at=context.received_at,
                   values=values, measured_at=context.received_at, time_source=TimeSource.RECEIPT,
                   status=frozenset(status), raw=raw, patient_hint=context.patient_hint)


class Pc300Codec:
    """`pc300`: Creative PC-300 kiosk board frames (BP start/stop, cuff pressure, result, error)."""

    name = CODEC
    summary = "Creative PC-300/303 kiosk board AA 55 frames with CRC-8/MAXIM (BP part)"

    def __init__(self, layout: Pc300Layout | None = None) -> None:
        self.layout = layout or Pc300Layout()

    def frames(self, stream: bytes) -> Sequence[Frame]:
        return AA55Framer().feed(stream)

    def decode(self, frame: bytes) -> Pc300Packet:
        return decode_frame(frame, self.layout)

    def readings(self, decoded: Any, context: ReadingContext) -> Sequence[Reading]:
        if isinstance(decoded, BpResult):
            return [bp_reading(decoded, context, encode_result(decoded))]
        if isinstance(decoded, BpError):
            return [bp_reading(decoded, context, encode_error(decoded.code, decoded.krk_module))]
        return []
