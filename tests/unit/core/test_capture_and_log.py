"""Capture-file parsing is strict; the log redaction filter masks identifiers that slip into a message."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from healthhut.drivers.capture import format_capture_line, parse_capture_line, read_capture
from healthhut.errors import UsageError
from healthhut.log import RedactingFilter, redact
from healthhut.readings import DeviceIdentity, Transport


def test_capture_line_round_trip() -> None:
    device = DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74", name="cuff", model="UA-651")
    at = datetime(2024, 6, 23, 6, 36, 2, tzinfo=UTC)
    line = parse_capture_line(format_capture_line(at, device, "bls.measurement", b"\x06\x78"), 3)
    assert (line.line_number, line.received_at, line.device, line.codec, line.data) == (
        3, at, device, "bls.measurement", b"\x06\x78")


@pytest.mark.parametrize(("text", "needle"), [
    ("not json", "not JSON"),
    ("[1]", "expected a JSON object"),
    ('{"device": {"address": "a"}, "codec": "x", "hex": "00"}', "missing received_at"),
    ('{"received_at": "2024-06-23T14:36:02", "device": {"address": "a"}, "codec": "x", "hex": "00"}',
     "UTC offset"),
    ('{"received_at": "2024-06-23T14:36:02+08:00", "device": {"address": "a"}, "codec": "x", "hex": "0g"}',
     "not hexadecimal"),
    ('{"received_at": "2024-06-23T14:36:02+08:00", "device": {"colour": "a"}, "codec": "x", "hex": "00"}',
     "unknown device key"),
    ('{"received_at": "2024-06-23T14:36:02+08:00", "device": {"name": "a"}, "codec": "x", "hex": "00"}',
     "needs an address"),
])
def test_bad_capture_lines_name_the_line(text: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle) as info:
        parse_capture_line(text, 7)
    assert "line 7" in str(info.value)


def test_read_capture_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    device = DeviceIdentity(Transport.SERIAL, address="/dev/ttyUSB0")
    line = format_capture_line(datetime(2024, 1, 1, tzinfo=UTC), device, "cms50.v7", b"\x01")
    path = tmp_path / "c.jsonl"
    path.write_text(f"# header\n\n{line}\n", encoding="utf-8")
    lines = list(read_capture(path))
    assert [entry.line_number for entry in lines] == [3]
    assert lines[0].device.transport is Transport.SERIAL


def test_redaction_masks_identity_numbers_and_identifier_pairs() -> None:
    assert "110101199003077777" not in redact("patient 110101199003077777 checked in")
    assert "11010119900307777X" not in redact("id 11010119900307777X")
    assert redact("urn:oid:2.16.156.10011.1.1|110101199003077777") == "urn:oid:2.16.156.10011.1.1|<redacted>"
    assert redact("reading 42 stored, 3 observation(s)") == "reading 42 stored, 3 observation(s)"


def test_filter_rewrites_records_before_handlers() -> None:
    seen: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    handler = ListHandler()
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("healthhut.test.redaction")
    logger.addHandler(handler)
    try:
        logger.warning("resident %s arrived", "110101199003077777")
    finally:
        logger.removeHandler(handler)
    assert seen == ["resident <redacted> arrived"]
