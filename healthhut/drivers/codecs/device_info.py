"""Device Information Service values (strings, System ID, PnP ID) and Battery Level.

System ID convention (fixed for the whole project, it feeds device keys and identifiers): the canonical
EUI-64 order, most significant byte first, 16 upper-case hex digits without separators; the wire order is
the reverse. Address 00:1C:05:FF:E8:74 -> "001C05FFFEFFE874" -> wire `74 E8 FF FE FF 05 1C 00`.
"""

from __future__ import annotations

from dataclasses import dataclass

from healthhut.drivers.codecs.ieee11073 import ByteReader, uint_bytes
from healthhut.errors import DecodeError


def decode_dis_string(data: bytes) -> str:
    """A DIS UTF-8 string (manufacturer, model, serial, revisions) without the NUL/space padding many send."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("not UTF-8", offset=exc.start, codec="dis.string") from None
    return text.rstrip("\x00 ").strip()


def decode_system_id(data: bytes) -> str:
    """System ID (0x2A23, 8 bytes) as 16 upper-case hex digits in canonical order."""
    reader = ByteReader(data, "dis.system-id")
    raw = reader.take(8, "system id")
    reader.end("system id")
    return raw[::-1].hex().upper()


def encode_system_id(system_id: str) -> bytes:
    """Wire bytes for a canonical 16-hex-digit System ID; ValueError if it is not one."""
    cleaned = system_id.replace("-", "").replace(":", "")
    if len(cleaned) != 16:
        raise ValueError("a system id has 16 hex digits")
    return bytes.fromhex(cleaned)[::-1]


def system_id_from_address(address: str) -> str:
    """The EUI-64 System ID derived from a Bluetooth address: OUI half + FFFE + device half."""
    digits = address.replace(":", "").replace("-", "").upper()
    if len(digits) != 12:
        raise ValueError("a Bluetooth address has 12 hex digits")
    int(digits, 16)  # ValueError for non-hex
    return f"{digits[:6]}FFFE{digits[6:]}"


@dataclass(frozen=True, slots=True)
class PnpId:
    """PnP ID (0x2A50): vendor id source (1 = Bluetooth SIG, 2 = USB-IF), vendor, product, version."""

    vendor_id_source: int
    vendor_id: int
    product_id: int
    product_version: int
    surplus: bytes = b""


def decode_pnp_id(data: bytes) -> PnpId:
    reader = ByteReader(data, "dis.pnp-id")
    source = reader.u8("vendor id source")
    vendor, product, version = reader.u16("vendor id"), reader.u16("product id"), reader.u16("product version")
    return PnpId(source, vendor, product, version, reader.surplus())


def encode_pnp_id(value: PnpId) -> bytes:
    return (uint_bytes(value.vendor_id_source, 1, "vendor id source") + uint_bytes(value.vendor_id, 2, "vendor id")
            + uint_bytes(value.product_id, 2, "product id") + uint_bytes(value.product_version, 2, "version"))


def decode_battery_level(data: bytes) -> int:
    """Battery Level (0x2A19) in percent; values 101-255 are reserved and rejected."""
    reader = ByteReader(data, "bas.battery-level")
    level = reader.u8("battery level")
    if level > 100:
        raise reader.fail("battery level in the reserved range 101-255", 0)
    return level


def encode_battery_level(level: int) -> bytes:
    if not 0 <= level <= 100:
        raise ValueError("battery level is 0..100 percent")
    return bytes([level])
