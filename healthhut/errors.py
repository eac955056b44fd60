"""The one exception tree of healthhut, rooted at HealthhutError.

    HealthhutError
    ├── ConfigError          bad or unreadable configuration (CLI exit code 2)
    ├── UsageError           a command was called wrongly (CLI exit code 2)
    ├── DecodeError          bytes that do not parse as the codec's format
    ├── ReadingError         a Reading that cannot be built or normalised (impossible value, bad time)
    ├── DeviceError          a device or transport problem, with advice for staff
    ├── StoreError           the local database refused or failed
    ├── SleepDataError       a sleep recording that cannot be read or analysed
    └── SyncError            delivery to the platform failed
        ├── TransientSyncError   worth retrying (timeouts, 408/429/5xx, connection errors)
        └── PermanentSyncError   retrying will not help (other 4xx)

Messages never carry resident identifiers or measured values: they end up in logs and on screens.
"""

from __future__ import annotations


class HealthhutError(Exception):
    """Base of every error healthhut raises on purpose; the CLI prints it as one line."""

    exit_code = 1

    def __init__(self, message: str, *, advice: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice

    def __str__(self) -> str:
        if self.advice:
            return f"{self.message} ({self.advice})"
        return self.message


class ConfigError(HealthhutError):
    """Configuration that cannot be used; names the file and the key."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 advice: str | None = None) -> None:
        where = ""
        if file and key:
            where = f"{file}: {key}: "
        elif file:
            where = f"{file}: "
        elif key:
            where = f"{key}: "
        super().__init__(f"{where}{message}", advice=advice)
        self.file = file
        self.key = key


class UsageError(HealthhutError):
    """A command-line call that does not make sense (unknown codec, bad hex, missing argument)."""

    exit_code = 2


class DecodeError(HealthhutError):
    """Bytes that do not decode; carries the byte offset so a capture can be inspected."""

    def __init__(self, reason: str, *, offset: int | None = None, codec: str | None = None) -> None:
        parts = []
        if codec:
            parts.append(codec)
        if offset is not None:
            parts.append(f"at byte {offset}")
        prefix = " ".join(parts)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)
        self.reason = reason
        self.offset = offset
        self.codec = codec


class ReadingError(HealthhutError):
    """A reading that is structurally impossible (naive time, unit mismatch, impossible value)."""


class DeviceError(HealthhutError):
    """A device, radio or port problem; `advice` tells staff what to try."""

    def __init__(self, message: str, *, advice: str | None = None, transient: bool = True) -> None:
        super().__init__(message, advice=advice)
        self.transient = transient


class StoreError(HealthhutError):
    """The local record store failed or refused an operation."""


class SleepDataError(HealthhutError):
    """A sleep recording (EDF, device file, series) that cannot be imported or analysed."""


class SyncError(HealthhutError):
    """Delivery to the district platform failed."""


class TransientSyncError(SyncError):
    """A failure worth retrying later: the platform or the network may recover."""

    def __init__(self, message: str, *, retry_after: float | None = None, advice: str | None = None) -> None:
        super().__init__(message, advice=advice)
        self.retry_after = retry_after


class PermanentSyncError(SyncError):
    """The platform refused the content; retrying the same bytes will not help."""

    def __init__(self, message: str, *, status: int | None = None, outcome: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome
