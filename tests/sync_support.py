"""Test support for sync: the loopback Medplum FHIR server process, and stores filled through the real path.

Imported by tests/unit/sync and tests/integration test modules (tests/ is on sys.path via its conftest).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

SERVER_DIR = Path(__file__).parent / "fhir_server"
PHD_SYSTEM = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation"
BASE_TIME = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class FhirTestServer:
    """A running `node tests/fhir_server/server.mjs`: FHIR base URL plus its admin (fault) listener."""

    def __init__(self, *, batch_only: bool = False, extra_args: Sequence[str] = (),
                 ssl_context: ssl.SSLContext | None = None, auth: bool = False) -> None:
        """`extra_args` go to server.mjs (TLS/auth options); `ssl_context` is what the tests' own searches use
        against an https listener; with `auth` they fetch a bearer token from the admin listener first."""
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed")
        args = [node, str(SERVER_DIR / "server.mjs"), "--port", "0", "--admin-port", "0", "--exit-with-stdin"]
        if batch_only:
            args.append("--batch-only")
        args.extend(extra_args)
        self.ssl_context = ssl_context
        self.auth = auth
        self.process = subprocess.Popen(args, cwd=SERVER_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"FHIR test server did not start (exit code {self.process.wait()}); "
                               f"try: node {SERVER_DIR / 'server.mjs'}")
        ports = json.loads(line)
        self.port: int = ports["port"]
        self.admin_port: int = ports["admin_port"]
        self.origin = f"{'https' if '--tls-cert' in extra_args else 'http'}://127.0.0.1:{self.port}"
        self.base_url = f"{self.origin}/fhir"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", data=data, method=method,
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def faults(self, **settings: Any) -> dict[str, Any]:
        return self._admin("POST", "/faults", settings)

    def reset(self) -> None:
        self._admin("POST", "/reset", {})

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "/stats")

    def stored_identifiers(self, system: str = PHD_SYSTEM) -> dict[str, int]:
        """identifier value -> how many Observations the server holds with it (its own data, not ours)."""
        return self._admin("GET", f"/identifiers?system={urllib.request.quote(system)}")

    def search_total(self, resource_type: str, identifier: str) -> int:
        """A plain FHIR search by identifier, as any client of the platform would do it."""
        query = urllib.request.quote(identifier, safe=":/|")
        request = urllib.request.Request(f"{self.base_url}/{resource_type}?identifier={query}")
        if self.auth:
            request.add_header("Authorization", f"Bearer {self._admin('POST', '/auth/test-token', {})['access_token']}")
        with urllib.request.urlopen(request, timeout=30, context=self.ssl_context) as resp:
            return int(json.loads(resp.read())["total"])


def server_or_skip(*, batch_only: bool = False, **options: Any) -> FhirTestServer:
    """Start the server; without node_modules: skip loudly on a laptop, fail under CI."""
    if not (SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
        reason = ("FHIR test server not installed: run tests/fhir_server/install.sh "
                  "(npm ci of the pinned Medplum engine)")
        if os.environ.get("CI"):
            pytest.fail(reason + " -- CI must install it", pytrace=False)
        pytest.skip("SKIPPED LOUDLY: " + reason)
    return FhirTestServer(batch_only=batch_only, **options)


def fhir_server_fixture(batch_only: bool = False, **options: Any) -> Iterator[FhirTestServer]:
    server = server_or_skip(batch_only=batch_only, **options)
    try:
        yield server
    finally:
        server.stop()


# ---- filling a real store through the real normaliser ------------------------------------------------------
@dataclass(frozen=True)
class Filled:
    identifiers: list[str]   # every Observation identifier value that was stored


def fill_store(store: Any, readings: int, *, patients: int = 3, devices: int = 2, start: int = 0,
               site_id: str = "hut-test") -> Filled:
    """Store `readings` blood-pressure readings (2 Observations each) for a few residents and cuffs."""
    from healthhut.readings import DeviceIdentity, Metric, Quantity, Reading, ReadingKind, TimeSource, Transport, Unit
    from healthhut.records.drafts import PatientRef
    from healthhut.records.normalise import NormaliseSettings, device_resource, observations_for, patient_resource

    settings = NormaliseSettings(site_id=site_id)
    identifiers: list[str] = []
    for i in range(start, start + readings):
        measured = BASE_TIME + timedelta(minutes=i)
        device = DeviceIdentity(Transport.BLE, address=f"AA:BB:CC:DD:EE:{i % devices:02X}", model="UA-651BLE")
        reading = Reading(
            kind=ReadingKind.BLOOD_PRESSURE, device=device, received_at=measured, measured_at=measured,
            time_source=TimeSource.DEVICE,
            values={Metric.SYSTOLIC: Quantity.of(str(110 + i % 30), Unit.MMHG),
                    Metric.DIASTOLIC: Quantity.of(str(70 + i % 15), Unit.MMHG),
                    Metric.PULSE_RATE: Quantity.of(Decimal(60 + i % 20), Unit.PER_MINUTE)})
        patient = PatientRef("urn:oid:2.999.1", f"R{1000 + i % patients}")
        drafts = observations_for(reading, patient, settings)
        store.save_reading(reading, drafts, patient=patient, patient_resource=patient_resource(patient),
                           device_resource=device_resource(device), now=measured)
        identifiers.extend(d.identifier for d in drafts if d.identifier)
    return Filled(identifiers=identifiers)


def platform_config(base_url: str, **overrides: Any) -> Any:
    from healthhut.config import PlatformConfig

    values: dict[str, Any] = {"base_url": base_url, "timeout_connect": 2.0, "timeout_read": 5.0}
    values.update(overrides)
    return PlatformConfig(**values)


class FakeClock:
    """An injected clock whose `sleep` advances time instead of waiting."""

    def __init__(self, start: datetime = BASE_TIME + timedelta(days=30)) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=max(0.0, seconds))
