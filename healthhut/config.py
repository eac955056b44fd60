"""Typed configuration: one TOML file validated into frozen models, with errors that name file and key.

Lookup order: `--config PATH`, else `$HEALTHHUT_CONFIG`, else `/etc/healthhut/healthhut.toml`, else the
embedded defaults, which work on a laptop (the store goes under the user's data directory).
Secrets are never inline: `*_file` keys name files, relative names resolve against systemd's
`$CREDENTIALS_DIRECTORY` when it is set.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from healthhut.errors import ConfigError

SYSTEM_CONFIG = Path("/etc/healthhut/healthhut.toml")
ENV_CONFIG = "HEALTHHUT_CONFIG"
DEFAULT_PATIENT_SYSTEM = "urn:oid:2.16.156.10011.1.1"  # Chinese resident identity card number (GB 11643)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(_Section):
    id: str = Field(default="hut-dev", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    name: str = "Development health hut"
    timezone: str = "Asia/Shanghai"
    patient_system: str = DEFAULT_PATIENT_SYSTEM

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _default_store_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("healthhut")) / "healthhut.db"


class StoreConfig(_Section):
    path: Path = Field(default_factory=_default_store_path)


def is_loopback_url(url: str) -> bool:
    """Does `url` name this machine (127.0.0.0/8, ::1, localhost)? Only such hosts may go without TLS checks."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PlatformConfig(_Section):
    base_url: str | None = None
    auth: Literal["none", "bearer", "oauth2", "smart"] = "none"
    token_file: Path | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret_file: Path | None = None
    private_key_file: Path | None = None
    key_id: str | None = None
    scope: str = "system/Observation.write system/Patient.write system/Device.write"
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    verify_tls: bool = True
    bundle_type: Literal["transaction", "batch"] = "transaction"
    batch_size: int = Field(default=50, ge=1, le=1000)
    timeout_connect: float = Field(default=10.0, gt=0)
    timeout_read: float = Field(default=30.0, gt=0)
    concurrency: int = Field(default=2, ge=1, le=16)
    compress_requests: bool = False

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a loopback test server)")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _auth_needs(self) -> PlatformConfig:
        needs = {
            "bearer": ("token_file",),
            "oauth2": ("token_url", "client_id", "client_secret_file"),
            "smart": ("token_url", "client_id", "private_key_file"),
        }.get(self.auth, ())
        missing = [key for key in needs if getattr(self, key) is None]
        if missing:
            raise ValueError(f"auth = {self.auth!r} needs {', '.join(missing)}")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together (mutual TLS)")
        # A hut must never talk to a real host without verified TLS: resident data would be open to anyone
        # on the path. Plain http:// and verify_tls = false are for a loopback test server only.
        for key in ("base_url", "token_url"):
            url = getattr(self, key)
            if url is None or is_loopback_url(url):
                continue
            if not self.verify_tls:
                raise ValueError(f"verify_tls = false is only allowed for a loopback server, not {key} {url}")
            if url.startswith("http://"):
                raise ValueError(f"{key} must use https:// (plain http:// only for a loopback server)")
        return self


class MqttConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = None
    tls: bool = False
    ca_file: Path | None = None


class DeviceConfig(_Section):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    driver: str
    address: str | None = None
    port: str | None = None
    station: str | None = None
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_endpoint(self) -> DeviceConfig:
        if (self.address is None) == (self.port is None):
            raise ValueError("give exactly one of address (Bluetooth) or port (serial)")
        return self


class Config(_Section):
    site: SiteConfig = Field(default_factory=SiteConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    platform: PlatformConfig = Field(default_factory=PlatformConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    devices: tuple[DeviceConfig, ...] = ()
    # Reference-range overrides; validated by healthhut.records.ranges when the normaliser is built.
    ranges: dict[str, Any] = Field(default_factory=dict)
    source: str = Field(default="<embedded defaults>", exclude=True)

    @model_validator(mode="after")
    def _unique_device_ids(self) -> Config:
        seen: set[str] = set()
        for device in self.devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} is used twice")
            seen.add(device.id)
        return self


def _format_location(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """Turn a pydantic location into the TOML key a person would look for (devices[2].driver)."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts) or "<top level>"


def parse_config(data: dict[str, Any], source: str) -> Config:
    """Validate a parsed TOML document; the first problem becomes a ConfigError naming file and key."""
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        key = _format_location(tuple(first["loc"]), data)
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(message + more, file=source, key=key) from None
    return config.model_copy(update={"source": source})


def resolve_config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """Which file to read: the explicit one, $HEALTHHUT_CONFIG, the system file, or none (defaults)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env)
    if SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return None


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    path = resolve_config_path(explicit)
    if path is None:
        return Config()
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except PermissionError:
        raise ConfigError("permission denied", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
    return parse_config(data, str(path))


def read_secret(path: Path, *, purpose: str) -> str:
    """Read a secret from a file; relative names resolve against $CREDENTIALS_DIRECTORY (systemd).

    The secret's content is never put in an error message.
    """
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    full = path if path.is_absolute() or not credentials else Path(credentials) / path
    try:
        text = full.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {purpose} ({exc.strerror})", file=str(full)) from None
    if not text:
        raise ConfigError(f"the {purpose} file is empty", file=str(full))
    return text
