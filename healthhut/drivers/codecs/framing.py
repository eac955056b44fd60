"""Incremental framers: bytes in any chunking → the same frames, resynchronising after garbage.

Serial reads and BLE notifications split and merge packets arbitrarily, so every stream codec runs its
bytes through one of these. A framer only decides about a candidate frame once it holds enough bytes to
be sure, so the frames found never depend on how the stream was chunked. Bytes that cannot start a
frame are dropped and counted: `Frame.discarded_before` tells how many were skipped just before a frame,
`discarded` the running total. Framers never raise; buffers are bounded by the longest frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

from healthhut.drivers.codecs.base import Frame
from healthhut.drivers.codecs.crc8 import crc8_maxim

#: `_match` results: a positive frame length, NEED_MORE, or a negative count of bytes to skip.
NEED_MORE = 0


class IncrementalFramer(ABC):
    """Feed bytes, get complete frames; subclasses say what a frame looks like at one position."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._base = 0              # stream offset of _buffer[0]
        self._skipped = 0           # bytes dropped since the last frame
        self.discarded = 0          # bytes dropped since the start
        self.frame_count = 0

    @abstractmethod
    def _match(self, buf: bytearray, i: int, n: int) -> int:
        """Frame length at `buf[i]`, NEED_MORE, or -k: `buf[i]` does not start a frame, skip k bytes."""

    def _frame_found(self, data: bytes) -> None:  # noqa: B027 - optional hook, default does nothing
        """Hook for framers whose next decision depends on the previous frame."""

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        buf = self._buffer
        buf += data
        frames: list[Frame] = []
        i, n = 0, len(buf)
        while i < n:
            result = self._match(buf, i, n)
            if result > 0:
                frame = bytes(buf[i:i + result])
                frames.append(Frame(frame, self._base + i, self._skipped))
                self._skipped = 0
                self.frame_count += 1
                self._frame_found(frame)
                i += result
            elif result == NEED_MORE:
                break
            else:
                self._skipped -= result
                self.discarded -= result
                i -= result
        del buf[:i]
        self._base += i
        return frames

    @property
    def pending(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buffer)

    def finish(self) -> int:
        """End of stream: drop (and count) the bytes of an unfinished frame; returns how many."""
        left = len(self._buffer)
        self.discarded += left
        self._base += left
        self._skipped = 0
        self._buffer.clear()
        return left


def _skip_while(buf: bytearray, i: int, n: int, high_bit_set: bool) -> int:
    j = i + 1
    if high_bit_set:
        while j < n and buf[j] & 0x80:
            j += 1
    else:
        while j < n and not buf[j] & 0x80:
            j += 1
    return -(j - i)


class SyncBitFramer(IncrementalFramer):
    """Fixed-length packets whose first byte alone has bit 7 set (BerryMed BCI, Contec generation A live)."""

    def __init__(self, length: int = 5) -> None:
        super().__init__()
        self.length = length

    def _match(self, buf: bytearray, i: int, n: int) -> int:
        if not buf[i] & 0x80:
            return _skip_while(buf, i, n, high_bit_set=False)
        length = self.length
        end = min(i + length, n)
        for j in range(i + 1, end):
            if buf[j] & 0x80:
                return -(j - i)   # a new head inside the packet: the packet was cut short
        return length if i + length <= n else NEED_MORE


UPLOAD_TRIO_HEADS = frozenset({0xF0, 0xF1, 0xF2})


class Cms50LegacyFramer(IncrementalFramer):
    """Contec generation A: 5-byte live packets and the 3-byte trios of a stored-recording upload.

    A live packet is a head byte (bit 7 set) and four bytes with bit 7 clear. An upload trio is a head
    byte, a second byte with bit 7 set and a third with bit 7 clear: `F2 hh mm` headers, `Fx pp ss`
    records, and (after the headers) three length bytes of the same shape. The length trio is only
    accepted right after a header trio, so a stray head byte cannot swallow a live packet.
    """

    def __init__(self) -> None:
        super().__init__()
        self._after_header = False

    def _frame_found(self, data: bytes) -> None:
        self._after_header = len(data) == 3 and data[0] == 0xF2

    def _match(self, buf: bytearray, i: int, n: int) -> int:
        head = buf[i]
        if not head & 0x80:
            return _skip_while(buf, i, n, high_bit_set=False)
        if i + 1 >= n:
            return NEED_MORE
        if buf[i + 1] & 0x80:
            if head not in UPLOAD_TRIO_HEADS and not self._after_header:
                return -1
            if i + 2 >= n:
                return NEED_MORE
            return 3 if not buf[i + 2] & 0x80 else -1
        end = min(i + 5, n)
        for j in range(i + 2, end):
            if buf[j] & 0x80:
                return -(j - i)
        return 5 if i + 5 <= n else NEED_MORE


class HighByteFramer(IncrementalFramer):
    """Contec V7.0 packets: a type byte (bit 7 clear) then bytes with bit 7 set; length from the type."""

    def __init__(self, lengths: Mapping[int, int]) -> None:
        super().__init__()
        self.lengths = dict(lengths)

    def _match(self, buf: bytearray, i: int, n: int) -> int:
        kind = buf[i]
        if kind & 0x80:
            return _skip_while(buf, i, n, high_bit_set=True)
        length = self.lengths.get(kind)
        if length is None:
            return -1
        end = min(i + length, n)
        for j in range(i + 1, end):
            if not buf[j] & 0x80:
                return -(j - i)   # a type byte inside the packet: resynchronise on it
        return length if i + length <= n else NEED_MORE


class AA55Framer(IncrementalFramer):
    """Creative/Lepu frames `AA 55 token LEN type payload CRC`, LEN = type + payload + CRC, CRC-8/MAXIM."""

    MIN_LEN = 2   # a type byte and the CRC

    def _match(self, buf: bytearray, i: int, n: int) -> int:
        if buf[i] != 0xAA:
            j = buf.find(b"\xaa", i + 1, n)
            return -((j if j >= 0 else n) - i)
        if i + 1 >= n:
            return NEED_MORE
        if buf[i + 1] != 0x55:
            return -1
        if i + 3 >= n:
            return NEED_MORE
        size = buf[i + 3]
        if size < self.MIN_LEN:
            return -1
        total = size + 4
        if i + total > n:
            return NEED_MORE
        if crc8_maxim(buf[i:i + total]) != 0:
            return -1
        return total


def aa55_frame(token: int, kind: int, payload: bytes = b"") -> bytes:
    """Build one `AA 55` frame with its LEN and CRC-8/MAXIM."""
    if not 0 <= len(payload) <= 252:
        raise ValueError("an AA 55 payload holds at most 252 bytes")
    body = bytes((0xAA, 0x55, token, len(payload) + 2, kind)) + payload
    return body + bytes((crc8_maxim(body),))
