"""The capture file format: JSON lines of raw frames, written by `devices sniff --record`, read by `replay`.

One line per frame: `{"received_at": ISO-8601 with offset, "device": {"address", "name", "model",
"serial", ...}, "codec": NAME, "hex": "..."}`. Parsing is strict: a line that cannot be trusted is an
error naming the line, never silently skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from healthhut.errors import UsageError
from healthhut.readings import DeviceIdentity, Transport

_DEVICE_KEYS = {"transport", "address", "name", "manufacturer", "model", "serial", "system_id", "firmware",
                "hardware", "software"}


@dataclass(frozen=True, slots=True)
class CaptureLine:
    line_number: int
    received_at: datetime
    device: DeviceIdentity
    codec: str
    data: bytes


def _device(raw: Any, line_number: int) -> DeviceIdentity:
    if not isinstance(raw, dict):
        raise UsageError(f"capture line {line_number}: 'device' must be an object")
    unknown = set(raw) - _DEVICE_KEYS
    if unknown:
        raise UsageError(f"capture line {line_number}: unknown device key(s) {', '.join(sorted(unknown))}")
    fields = {k: (str(v) if v is not None else None) for k, v in raw.items() if k != "transport"}
    try:
        transport = Transport(raw.get("transport", "ble"))
    except ValueError:
        raise UsageError(f"capture line {line_number}: unknown transport {raw.get('transport')!r}") from None
    if not (fields.get("system_id") or fields.get("address") or fields.get("serial")):
        raise UsageError(f"capture line {line_number}: the device needs an address, system_id or serial")
    return DeviceIdentity(transport=transport, **fields)


def parse_capture_line(text: str, line_number: int) -> CaptureLine:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"capture line {line_number}: not JSON ({exc.msg})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"capture line {line_number}: expected a JSON object")
    missing = {"received_at", "device", "codec", "hex"} - set(raw)
    if missing:
        raise UsageError(f"capture line {line_number}: missing {', '.join(sorted(missing))}")
    try:
        received_at = datetime.fromisoformat(str(raw["received_at"]))
    except ValueError:
        raise UsageError(f"capture line {line_number}: received_at is not an ISO-8601 time") from None
    if received_at.utcoffset() is None:
        raise UsageError(f"capture line {line_number}: received_at needs a UTC offset")
    try:
        data = bytes.fromhex(str(raw["hex"]))
    except ValueError:
        raise UsageError(f"capture line {line_number}: hex is not hexadecimal") from None
    return CaptureLine(line_number, received_at, _device(raw["device"], line_number), str(raw["codec"]), data)


def read_capture(path: Path) -> Iterator[CaptureLine]:
    """Lines of a capture file in order; blank lines and `#` comments are allowed."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read capture {path}: {exc.strerror}") from None
    with handle:
        for number, text in enumerate(handle, start=1):
            stripped = text.strip()
            if stripped and not stripped.startswith("#"):
                yield parse_capture_line(stripped, number)


def format_capture_line(received_at: datetime, device: DeviceIdentity, codec: str, data: bytes) -> str:
    device_fields: dict[str, str] = {"transport": device.transport.value}
    for key in sorted(_DEVICE_KEYS - {"transport"}):
        value = getattr(device, key)
        if value is not None:
            device_fields[key] = value
    return json.dumps({"received_at": received_at.isoformat(), "device": device_fields, "codec": codec,
                       "hex": data.hex()}, sort_keys=True)
