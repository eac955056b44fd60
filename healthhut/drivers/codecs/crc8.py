"""CRC-8/MAXIM (Dallas 1-Wire): the checksum of the Creative/Lepu `AA 55` frames (PC-60FW, PC-300)."""

from __future__ import annotations


def _table() -> tuple[int, ...]:
    # Reflected polynomial 0x31 (0x8C reflected), init 0x00, no final xor.
    rows = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8C if crc & 1 else crc >> 1
        rows.append(crc)
    return tuple(rows)


CRC8_MAXIM_TABLE: tuple[int, ...] = _table()


def crc8_maxim(data: bytes | bytearray | memoryview) -> int:
    """CRC-8/MAXIM of `data`; over a whole frame including its CRC byte it is 0."""
    crc = 0
    table = CRC8_MAXIM_TABLE
    for byte in data:
        crc = table[crc ^ byte]
    return crc
