"""The Codec protocol and the context a codec needs to turn decoded frames into Readings.

A codec is named (`bls.measurement`, `cms50.v7`, ...), splits a byte stream into frames, decodes one frame
into a typed value (a frozen dataclass), and maps a decoded value to zero or more Readings. Everything here
is pure: no I/O, no logging, no clocks (the receive time and the site's timezone come in the context).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol

from healthhut.readings import DeviceIdentity, Reading


@dataclass(frozen=True, slots=True)
class ReadingContext:
    """What a codec cannot know from the bytes: who sent them, when they arrived, the site's wall clock."""

    device: DeviceIdentity
    received_at: datetime
    timezone: tzinfo                      # device wall-clock times are interpreted in this zone
    clock_skew: timedelta | None = None   # gateway minus device clock, when read on this connection
    patient_hint: str | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame found in a byte stream, with where it started (for diagnostics) and bytes skipped before it."""

    data: bytes
    offset: int
    discarded_before: int = 0


class Codec(Protocol):
    """What `healthhut decode`, `replay` and the drivers need from a codec."""

    name: str
    summary: str
    # True for codecs whose Readings are live display data only (streaming oximeters): ingest shows them but
    # stores nothing; what such devices deliver for keeps arrives as a downloaded recording.
    live_only: bool

    def frames(self, stream: bytes) -> Sequence[Frame]:
        """Split a byte stream into frames. A GATT characteristic value is one frame."""
        ...

    def decode(self, frame: bytes) -> Any:
        """Decode one frame into a typed value, or raise DecodeError naming the offset and reason."""
        ...

    def readings(self, decoded: Any, context: ReadingContext) -> Sequence[Reading]:
        """Map a decoded value to Readings; display-only frames (cuff pressure, keep-alive) give none."""
        ...


class SingleFrameCodec:
    """Base for GATT characteristic codecs, where one notification is one frame."""

    name = ""
    summary = ""
    live_only = False

    def frames(self, stream: bytes) -> Sequence[Frame]:
        return [Frame(stream, 0)] if stream else []


def describe(value: Any) -> Any:
    """A JSON-ready view of a decoded value: dataclass fields by name, Decimals as strings, enums by value.

    Decimals stay strings so the device's resolution is shown exactly (SFLOAT 2.00 prints "2.00").
    """
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: describe(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(describe(k)): describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        items = [describe(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (frozenset, set)) else items
    return value

