"""Fixtures shared by the integration tests: a real store file, the loopback FHIR server, a CLI config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_support import FhirTestServer, fhir_server_fixture

from healthhut.records.store import RecordStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    """A real SQLite store at `tmp_path / "records.db"`, migrated, closed after the test."""
    opened = RecordStore.open(tmp_path / "records.db")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def server() -> Iterator[FhirTestServer]:
    """The Medplum test server on loopback, one per test module (fails under CI=true when missing)."""
    yield from fhir_server_fixture()


@pytest.fixture
def fhir(server: FhirTestServer) -> FhirTestServer:
    """The module's FHIR server with its data and injected faults cleared for this test."""
    server.reset()
    return server


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config file for CLI subprocess tests: store under `tmp_path/db/hh.db`, site in Asia/Shanghai."""
    path = tmp_path / "healthhut.toml"
    path.write_text(f'[site]\nid = "hut-test"\ntimezone = "Asia/Shanghai"\n\n[store]\npath = "{tmp_path}/db/hh.db"\n',
                    encoding="utf-8")
    return path
