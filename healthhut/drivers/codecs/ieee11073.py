"""IEEE 11073-20601 SFLOAT/FLOAT and the little-endian field reader/writer every GATT codec shares.

A medical float decodes to `Decimal` (the exponent is the device's resolution: 0xE0C8 -> Decimal('2.00')) or,
for the five special raw values, to an `AbsentReason`. Specials are matched on the exact raw value (the PHD
IG and Wireshark rule), so 0xF7FF is 204.7, not NaN.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Context, Decimal
from functools import lru_cache
from typing import Any, TypeAlias

from healthhut.errors import DecodeError
from healthhut.readings import AbsentReason, Quantity, Unit

MedicalFloat: TypeAlias = Decimal | AbsentReason
"""A decoded SFLOAT/FLOAT: a finite Decimal, or the reason the device sent no number."""


@dataclass(frozen=True, slots=True)
class _FloatFormat:
    name: str
    size: int            # bytes on the wire
    exponent_bits: int
    mantissa_bits: int
    specials: dict[int, AbsentReason]

    @property
    def mantissa_limit(self) -> int:
        # Largest magnitude usable for a normal value: the top three mantissas are taken by the specials.
        return (1 << (self.mantissa_bits - 1)) - 3

    @property
    def exponent_range(self) -> tuple[int, int]:
        half = 1 << (self.exponent_bits - 1)
        return -half, half - 1


SFLOAT = _FloatFormat("SFLOAT", 2, 4, 12, {
    0x07FF: AbsentReason.NOT_A_NUMBER,
    0x0800: AbsentReason.NOT_REPRESENTABLE,
    0x07FE: AbsentReason.POSITIVE_INFINITY,
    0x0802: AbsentReason.NEGATIVE_INFINITY,
    0x0801: AbsentReason.RESERVED,
})
FLOAT = _FloatFormat("FLOAT", 4, 8, 24, {
    0x007FFFFF: AbsentReason.NOT_A_NUMBER,
    0x00800000: AbsentReason.NOT_REPRESENTABLE,
    0x007FFFFE: AbsentReason.POSITIVE_INFINITY,
    0x00800002: AbsentReason.NEGATIVE_INFINITY,
    0x00800001: AbsentReason.RESERVED,
})


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _from_raw(raw: int, fmt: _FloatFormat) -> MedicalFloat:
    special = fmt.specials.get(raw)
    if special is not None:
        return special
    mantissa = _signed(raw & ((1 << fmt.mantissa_bits) - 1), fmt.mantissa_bits)
    exponent = _signed(raw >> fmt.mantissa_bits, fmt.exponent_bits)
    # Built from a string so no decimal context can round it; the exponent is kept as the resolution.
    return Decimal(f"{mantissa}E{exponent}")


# A device sends the same few hundred SFLOATs over and over (120 mm[Hg], 72 /min, 36.8 Cel), and a Decimal
# built from text costs a microsecond: remembered per raw value. Safe to share: Decimal and AbsentReason are
# immutable. Bounded: 4096 of the 65,536 raw values is every plausible vital sign at its usual resolution.
@lru_cache(maxsize=4096)
def _sfloat(raw: int) -> MedicalFloat:
    return _from_raw(raw, SFLOAT)


def sfloat_from_raw(raw: int) -> MedicalFloat:
    """Decode a 16-bit SFLOAT given as an integer (already assembled from the little-endian bytes)."""
    return _sfloat(raw & 0xFFFF)


def float_from_raw(raw: int) -> MedicalFloat:
    """Decode a 32-bit FLOAT given as an integer."""
    return _from_raw(raw & 0xFFFFFFFF, FLOAT)


def decode_sfloat(data: bytes) -> MedicalFloat:
    """Decode exactly two bytes (wire order) as an SFLOAT."""
    reader = ByteReader(data, "SFLOAT")
    value = reader.sfloat()
    reader.end("SFLOAT")
    return value


def decode_float(data: bytes) -> MedicalFloat:
    """Decode exactly four bytes (wire order) as a FLOAT."""
    reader = ByteReader(data, "FLOAT")
    value = reader.float32()
    reader.end("FLOAT")
    return value


def _raw_for(value: MedicalFloat, exponent: int | None, fmt: _FloatFormat) -> int:
    if isinstance(value, AbsentReason):
        for raw, reason in fmt.specials.items():
            if reason is value:
                return raw
        raise ValueError(f"{value.value} has no {fmt.name} special value")
    if not value.is_finite():
        raise ValueError(f"{fmt.name} needs a finite Decimal; use an AbsentReason for NaN/infinity")
    low, high = fmt.exponent_range
    sign, digits, value_exponent = value.as_tuple()
    if not isinstance(value_exponent, int):  # unreachable for finite values; keeps the type narrow
        raise ValueError(f"{fmt.name} needs a finite Decimal")
    exp: int = value_exponent
    mantissa = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    if exponent is not None:
        shift = exp - exponent
        if shift >= 0:
            mantissa *= 10 ** shift
        else:
            mantissa, rest = divmod(mantissa, 10 ** -shift)
            if rest:
                raise ValueError(f"{value} has more digits than exponent {exponent} allows")
        exp = exponent
    else:
        # Lossless adjustments only: drop trailing zeros while the mantissa is too big or the exponent too
        # small, append zeros while the exponent is too big.
        while (abs(mantissa) > fmt.mantissa_limit or exp < low) and mantissa % 10 == 0 and mantissa:
            mantissa //= 10
            exp += 1
        if mantissa == 0:
            exp = min(max(exp, low), high)
        while exp > high and abs(mantissa * 10) <= fmt.mantissa_limit:
            mantissa *= 10
            exp -= 1
    if not low <= exp <= high:
        raise ValueError(f"{value} needs exponent {exp}, outside {fmt.name} range {low}..{high}")
    if abs(mantissa) > fmt.mantissa_limit:
        raise ValueError(f"{value} does not fit a {fmt.name} mantissa at exponent {exp}")
    mask = (1 << fmt.mantissa_bits) - 1
    return ((exp & ((1 << fmt.exponent_bits) - 1)) << fmt.mantissa_bits) | (mantissa & mask)


def encode_sfloat(value: MedicalFloat, exponent: int | None = None) -> bytes:
    """Two wire bytes for `value`; the exponent is the Decimal's own unless given.

    Raises ValueError when the value cannot be represented exactly (too many digits, exponent out of
    -8..7, or a mantissa in the special range), and for AbsentReasons with no SFLOAT special value.
    """
    return _raw_for(value, exponent, SFLOAT).to_bytes(2, "little")


def encode_float(value: MedicalFloat, exponent: int | None = None) -> bytes:
    """Four wire bytes for `value` as a FLOAT; same rules as `encode_sfloat` (exponent -128..127)."""
    return _raw_for(value, exponent, FLOAT).to_bytes(4, "little")


def to_quantity(value: MedicalFloat, unit: Unit) -> Quantity:
    """A Quantity for a decoded medical float; positive exponents are written out (2E+1 -> 20)."""
    if isinstance(value, AbsentReason):
        return Quantity.missing(value, unit)
    return _decimal_quantity(str(value), unit)


# Every reading makes a Quantity per value, and a checked frozen Quantity costs more than decoding the bytes: the
# few hundred distinct (value, unit) pairs a hut sees are remembered (Quantity and Decimal are immutable, so
# readings may share them). Keyed by the text, not the Decimal: Decimal("120") == Decimal("120.0") and they hash
# alike, but they are different resolutions. The text gives back exactly the Decimal it came from.
@lru_cache(maxsize=4096)
def _decimal_quantity(text: str, unit: Unit) -> Quantity:
    value = Decimal(text)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        # Its own context: a FLOAT can have up to 7 + 127 digits, beyond the default precision of 28.
        value = Context(prec=160).quantize(value, Decimal(1))
    return Quantity(value, unit)


class ByteReader:
    """Reads little-endian fields from one frame in order; a short frame raises DecodeError with the offset."""

    __slots__ = ("_codec", "_data", "_size", "offset")

    def __init__(self, data: bytes, codec: str) -> None:
        self._data = bytes(data)
        self._size = len(self._data)
        self._codec = codec
        self.offset = 0

    def _short(self, size: int, what: str) -> DecodeError:
        remaining = self._size - self.offset
        return DecodeError(f"frame ends before {what} ({size} bytes needed, {remaining} left of {self._size})",
                           offset=self.offset, codec=self._codec)

    def _take(self, size: int, what: str) -> bytes:
        end = self.offset + size
        if end > self._size:
            raise self._short(size, what)
        chunk = self._data[self.offset:end]
        self.offset = end
        return chunk

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self._take(size, what), "little")

    # u8 and u16 are every other field of every frame: read in place, without a slice and two more calls.
    def u8(self, what: str = "uint8") -> int:
        offset = self.offset
        if offset >= self._size:
            raise self._short(1, what)
        self.offset = offset + 1
        return self._data[offset]

    def s8(self, what: str = "sint8") -> int:
        return _signed(self.uint(1, what), 8)

    def u16(self, what: str = "uint16") -> int:
        offset = self.offset
        if offset + 2 > self._size:
            raise self._short(2, what)
        self.offset = offset + 2
        data = self._data
        return data[offset] | data[offset + 1] << 8

    def u24(self, what: str = "uint24") -> int:
        return self.uint(3, what)

    def u32(self, what: str = "uint32") -> int:
        return self.uint(4, what)

    def sfloat(self, what: str = "SFLOAT") -> MedicalFloat:
        return sfloat_from_raw(self.u16(what))

    def float32(self, what: str = "FLOAT") -> MedicalFloat:
        return float_from_raw(self.u32(what))

    def take(self, size: int, what: str) -> bytes:
        return self._take(size, what)

    def unpack(self, layout: struct.Struct) -> tuple[Any, ...] | None:
        """Every field of `layout` in one go, or None (nothing consumed) when the frame is shorter.

        A fast path for a codec that knows its layout from the flags: on None it reads field by field, so the
        DecodeError still names the first missing field.
        """
        end = self.offset + layout.size
        if end > self._size:
            return None
        values = layout.unpack_from(self._data, self.offset)
        self.offset = end
        return values

    def surplus(self) -> bytes:
        """The bytes after the last known field (later spec versions may add fields); consumes them."""
        rest = self._data[self.offset:]
        self.offset = self._size
        return rest

    def fail(self, reason: str, offset: int | None = None) -> DecodeError:
        return DecodeError(reason, offset=self.offset if offset is None else offset, codec=self._codec)

    def end(self, what: str = "value") -> None:
        """Require that the frame is used up exactly (for fixed-size values without a surplus field)."""
        if self.offset != self._size:
            raise self.fail(f"{self._size - self.offset} unexpected bytes after the {what}")


def uint_bytes(value: int, size: int, what: str) -> bytes:
    """Little-endian unsigned encoding; ValueError if `value` does not fit in `size` bytes."""
    if not 0 <= value < 1 << (8 * size):
        raise ValueError(f"{what} {value} does not fit in {size} bytes")
    return value.to_bytes(size, "little")
