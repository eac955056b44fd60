"""Logging for the console and the journal, with a last-line-of-defence redaction filter.

The rule is that values and resident identifiers are never passed to a logger at all; the filter only
catches mistakes: it masks long digit runs (identity-card and phone numbers) and anything that looks like an
identifier `system|value` pair, before the record reaches any handler.
"""

from __future__ import annotations

import logging
import os
import re
import sys

_LONG_DIGITS = re.compile(r"(?<![\w.-])\d{6,}[\dXx]?(?![\w.-])")
_IDENTIFIER_PAIR = re.compile(r"\b(urn:oid:[\d.]+|https?://\S+?)\|\S+")


def redact(text: str) -> str:
    text = _IDENTIFIER_PAIR.sub(r"\1|<redacted>", text)
    return _LONG_DIGITS.sub("<redacted>", text)


class RedactingFilter(logging.Filter):
    """Rewrites the formatted message of every record so a slipped identifier is masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: keep the record, drop its arguments
            message = str(record.msg)
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(*, debug: bool = False, service: bool = False) -> None:
    """Configure the root logger once: journal-friendly when under systemd, plain on a terminal.

    Interactive commands show warnings only (their output is the answer); services log INFO to the journal.
    """
    root = logging.getLogger()
    level = logging.DEBUG if debug else (logging.INFO if service else logging.WARNING)
    logging.getLogger("healthhut").setLevel(level)
    if any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
