"""Health Thermometer codecs: Temperature Measurement (0x2A1C, also Intermediate Temperature 0x2A1E) and Type."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from healthhut.drivers.codecs.base import ReadingContext, SingleFrameCodec
from healthhut.drivers.codecs.gatt_time import DeviceTime, encode_date_time, read_date_time, reading_time
from healthhut.drivers.codecs.ieee11073 import ByteReader, MedicalFloat, encode_float, to_quantity, uint_bytes
from healthhut.readings import Metric, Reading, ReadingKind, Unit

FLAG_FAHRENHEIT = 0x01
FLAG_TIME_STAMP = 0x02
FLAG_TEMPERATURE_TYPE = 0x04


class TemperatureType(IntEnum):
    """Temperature Type (0x2A1D) codes; 0 and 10-255 are reserved."""

    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTROINTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9


BODY_SITES: dict[TemperatureType, str] = {
    TemperatureType.ARMPIT: "armpit",
    TemperatureType.BODY: "body",
    TemperatureType.EAR: "ear",
    TemperatureType.FINGER: "finger",
    TemperatureType.GASTROINTESTINAL_TRACT: "gastrointestinal-tract",
    TemperatureType.MOUTH: "mouth",
    TemperatureType.RECTUM: "rectum",
    TemperatureType.TOE: "toe",
    TemperatureType.TYMPANUM: "tympanum",
}


def body_site(temperature_type: int | None) -> str | None:
    """The body-site word for a temperature type code; None for absent or reserved codes."""
    if temperature_type is None or temperature_type not in TemperatureType._value2member_map_:
        return None
    return BODY_SITES[TemperatureType(temperature_type)]


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """A decoded 0x2A1C value. `temperature_type` is the raw code (reserved codes kept); `unit` Cel or [degF]."""

    temperature: MedicalFloat
    unit: Unit = Unit.CELSIUS
    timestamp: DeviceTime | None = None
    temperature_type: int | None = None
    surplus: bytes = b""
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def body_site(self) -> str | None:
        return body_site(self.temperature_type)


def decode_temperature_measurement(data: bytes) -> TemperatureMeasurement:
    reader = ByteReader(data, "hts.temperature")
    flags = reader.u8("flags")
    value = reader.float32("temperature")
    timestamp = read_date_time(reader) if flags & FLAG_TIME_STAMP else None
    kind = reader.u8("temperature type") if flags & FLAG_TEMPERATURE_TYPE else None
    unit = Unit.FAHRENHEIT if flags & FLAG_FAHRENHEIT else Unit.CELSIUS
    return TemperatureMeasurement(value, unit, timestamp, kind, reader.surplus(), bytes(data))


def encode_temperature_measurement(value: TemperatureMeasurement) -> bytes:
    if value.unit not in (Unit.CELSIUS, Unit.FAHRENHEIT):
        raise ValueError(f"temperature unit must be Cel or [degF], not {value.unit.value}")
    flags = ((FLAG_FAHRENHEIT if value.unit is Unit.FAHRENHEIT else 0)
             | (FLAG_TIME_STAMP if value.timestamp is not None else 0)
             | (FLAG_TEMPERATURE_TYPE if value.temperature_type is not None else 0))
    out = bytes([flags]) + encode_float(value.temperature)
    if value.timestamp is not None:
        out += encode_date_time(value.timestamp)
    if value.temperature_type is not None:
        out += uint_bytes(value.temperature_type, 1, "temperature type")
    return out


def decode_temperature_type(data: bytes) -> int:
    """Decode the Temperature Type characteristic (0x2A1D): one uint8 code (see `body_site`)."""
    reader = ByteReader(data, "hts.temperature-type")
    code = reader.u8("temperature type")
    reader.end("temperature type")
    return code


class TemperatureMeasurementCodec(SingleFrameCodec):
    name = "hts.temperature"
    summary = "Bluetooth Health Thermometer Temperature Measurement (0x2A1C)"

    def decode(self, frame: bytes) -> TemperatureMeasurement:
        return decode_temperature_measurement(frame)

    def readings(self, decoded: TemperatureMeasurement, context: ReadingContext) -> list[Reading]:
        measured_at, source = reading_time(decoded.timestamp, context)
        return [Reading(
            kind=ReadingKind.BODY_TEMPERATURE, device=context.device, received_at=context.received_at,
            values={Metric.BODY_TEMPERATURE: to_quantity(decoded.temperature, decoded.unit)},
            measured_at=measured_at, time_source=source, clock_skew=context.clock_skew,
            raw=decoded.raw or encode_temperature_measurement(decoded), patient_hint=context.patient_hint,
            body_site=decoded.body_site)]
