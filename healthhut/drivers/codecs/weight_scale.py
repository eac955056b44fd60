"""Weight Scale codecs: Weight Measurement (0x2A9D) and Weight Scale Feature (0x2A9E).

Weights, BMI and height are uint16 steps scaled exactly in Decimal (14480 x 0.005 = Decimal('72.400')), so
the scale's resolution survives. Weight 0xFFFF means "measurement unsuccessful", never 327.675 kg.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from healthhut.drivers.codecs.base import ReadingContext, SingleFrameCodec
from healthhut.drivers.codecs.blood_pressure import patient_hint_for_user
from healthhut.drivers.codecs.gatt_time import DeviceTime, encode_date_time, read_date_time, reading_time
from healthhut.drivers.codecs.ieee11073 import ByteReader, uint_bytes
from healthhut.readings import AbsentReason, Metric, Quantity, Reading, ReadingKind, Unit

FLAG_IMPERIAL = 0x01
FLAG_TIME_STAMP = 0x02
FLAG_USER_ID = 0x04
FLAG_BMI_AND_HEIGHT = 0x08

WEIGHT_UNSUCCESSFUL = 0xFFFF
WEIGHT_STEP_SI = Decimal("0.005")      # kg
WEIGHT_STEP_IMPERIAL = Decimal("0.01")  # lb
BMI_STEP = Decimal("0.1")
HEIGHT_STEP_SI = Decimal("0.001")      # m
HEIGHT_STEP_IMPERIAL = Decimal("0.1")  # in


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """A decoded 0x2A9D value. `weight` is AbsentReason.MEASUREMENT_FAILED for 0xFFFF; BMI and height
    are both present or both None. Units follow `imperial` (see the unit properties)."""

    weight: Decimal | AbsentReason
    imperial: bool = False
    timestamp: DeviceTime | None = None
    user_id: int | None = None
    bmi: Decimal | None = None
    height: Decimal | None = None
    surplus: bytes = b""
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def weight_unit(self) -> Unit:
        return Unit.POUND if self.imperial else Unit.KILOGRAM

    @property
    def height_unit(self) -> Unit:
        return Unit.INCH if self.imperial else Unit.METRE


def _scaled(steps: int, step: Decimal) -> Decimal:
    return steps * step   # exact: Decimal multiplication by an int keeps the step's exponent


def _steps(value: Decimal, step: Decimal, what: str, limit: int) -> int:
    steps = value / step
    if steps != steps.to_integral_value() or not 0 <= steps <= limit:
        raise ValueError(f"{what} {value} is not a whole number of {step} steps within 0..{limit}")
    return int(steps)


def decode_weight_measurement(data: bytes) -> WeightMeasurement:
    reader = ByteReader(data, "wss.weight")
    flags = reader.u8("flags")
    imperial = bool(flags & FLAG_IMPERIAL)
    steps = reader.u16("weight")
    weight: Decimal | AbsentReason = (
        AbsentReason.MEASUREMENT_FAILED if steps == WEIGHT_UNSUCCESSFUL
        else _scaled(steps, WEIGHT_STEP_IMPERIAL if imperial else WEIGHT_STEP_SI))
    timestamp = read_date_time(reader) if flags & FLAG_TIME_STAMP else None
    user = reader.u8("user id") if flags & FLAG_USER_ID else None
    bmi = height = None
    if flags & FLAG_BMI_AND_HEIGHT:
        bmi = _scaled(reader.u16("BMI"), BMI_STEP)
        height = _scaled(reader.u16("height"), HEIGHT_STEP_IMPERIAL if imperial else HEIGHT_STEP_SI)
    return WeightMeasurement(weight, imperial, timestamp, user, bmi, height, reader.surplus(), bytes(data))


def encode_weight_measurement(value: WeightMeasurement) -> bytes:
    """Wire bytes for 0x2A9D; ValueError for values off the resolution grid or BMI without height."""
    if (value.bmi is None) != (value.height is None):
        raise ValueError("BMI and height are sent together or not at all")
    flags = ((FLAG_IMPERIAL if value.imperial else 0) | (FLAG_TIME_STAMP if value.timestamp is not None else 0)
             | (FLAG_USER_ID if value.user_id is not None else 0)
             | (FLAG_BMI_AND_HEIGHT if value.bmi is not None else 0))
    if isinstance(value.weight, AbsentReason):
        if value.weight is not AbsentReason.MEASUREMENT_FAILED:
            raise ValueError("the only absent weight a scale can send is 'measurement unsuccessful'")
        steps = WEIGHT_UNSUCCESSFUL
    else:
        steps = _steps(value.weight, WEIGHT_STEP_IMPERIAL if value.imperial else WEIGHT_STEP_SI, "weight",
                       WEIGHT_UNSUCCESSFUL - 1)
    out = bytes([flags]) + uint_bytes(steps, 2, "weight")
    if value.timestamp is not None:
        out += encode_date_time(value.timestamp)
    if value.user_id is not None:
        out += uint_bytes(value.user_id, 1, "user id")
    if value.bmi is not None and value.height is not None:
        out += uint_bytes(_steps(value.bmi, BMI_STEP, "BMI", 0xFFFF), 2, "BMI")
        out += uint_bytes(_steps(value.height, HEIGHT_STEP_IMPERIAL if value.imperial else HEIGHT_STEP_SI,
                                 "height", 0xFFFF), 2, "height")
    return out


# Weight Scale Feature resolution codes -> step sizes (SI, imperial); code 0 = not specified.
WEIGHT_RESOLUTIONS: dict[int, tuple[Decimal, Decimal]] = {
    1: (Decimal("0.5"), Decimal("1")), 2: (Decimal("0.2"), Decimal("0.5")), 3: (Decimal("0.1"), Decimal("0.2")),
    4: (Decimal("0.05"), Decimal("0.1")), 5: (Decimal("0.02"), Decimal("0.05")),
    6: (Decimal("0.01"), Decimal("0.02")), 7: (Decimal("0.005"), Decimal("0.01")),
}
HEIGHT_RESOLUTIONS: dict[int, tuple[Decimal, Decimal]] = {
    1: (Decimal("0.01"), Decimal("1")), 2: (Decimal("0.005"), Decimal("0.5")), 3: (Decimal("0.001"), Decimal("0.1")),
}


@dataclass(frozen=True, slots=True)
class WeightScaleFeature:
    """A decoded 0x2A9E value, kept as its 32 bits with named views."""

    bits: int
    surplus: bytes = b""

    @property
    def time_stamp_supported(self) -> bool:
        return bool(self.bits & 0x1)

    @property
    def multiple_users_supported(self) -> bool:
        return bool(self.bits & 0x2)

    @property
    def bmi_supported(self) -> bool:
        return bool(self.bits & 0x4)

    @property
    def weight_resolution(self) -> int:
        """Code 0-15 (bits 3-6); see WEIGHT_RESOLUTIONS. 0 = not specified, 8-15 reserved."""
        return (self.bits >> 3) & 0xF

    @property
    def height_resolution(self) -> int:
        """Code 0-7 (bits 7-9); see HEIGHT_RESOLUTIONS. 0 = not specified, 4-7 reserved."""
        return (self.bits >> 7) & 0x7


def decode_weight_scale_feature(data: bytes) -> WeightScaleFeature:
    reader = ByteReader(data, "wss.feature")
    bits = reader.u32("weight scale features")
    return WeightScaleFeature(bits, reader.surplus())


def encode_weight_scale_feature(value: WeightScaleFeature) -> bytes:
    return uint_bytes(value.bits, 4, "weight scale features")


class WeightMeasurementCodec(SingleFrameCodec):
    name = "wss.weight"
    summary = "Bluetooth Weight Scale Weight Measurement (0x2A9D)"

    def decode(self, frame: bytes) -> WeightMeasurement:
        return decode_weight_measurement(frame)

    def readings(self, decoded: WeightMeasurement, context: ReadingContext) -> list[Reading]:
        weight = (Quantity.missing(decoded.weight, decoded.weight_unit) if isinstance(decoded.weight, AbsentReason)
                  else Quantity(decoded.weight, decoded.weight_unit))
        values = {Metric.BODY_WEIGHT: weight}
        if decoded.height is not None:
            values[Metric.BODY_HEIGHT] = Quantity(decoded.height, decoded.height_unit)
        if decoded.bmi is not None:
            values[Metric.BMI] = Quantity(decoded.bmi, Unit.KG_PER_M2)
        measured_at, source = reading_time(decoded.timestamp, context)
        return [Reading(
            kind=ReadingKind.BODY_WEIGHT, device=context.device, received_at=context.received_at,
            values=values, measured_at=measured_at, time_source=source, clock_skew=context.clock_skew,
            raw=decoded.raw or encode_weight_measurement(decoded),
            patient_hint=patient_hint_for_user(decoded.user_id, context))]
