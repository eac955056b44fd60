"""SIGKILL the sync process at random points of a drain of thousands of records, restart, repeat: once each."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sync_support import FhirTestServer, fill_store

from healthhut.records.store import OutboxState, RecordStore

CHILD = Path(__file__).with_name("sync_child_process.py")


def start_child(db: Path, server: FhirTestServer) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(CHILD), str(db), server.base_url], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def sent_count(store: RecordStore) -> int:
    return store.outbox_counts()[OutboxState.SENT]


@pytest.mark.slow
def test_sigkill_during_drain_then_restart_repeatedly(server: FhirTestServer, tmp_path: Path) -> None:
    server.reset()
    db = tmp_path / "records.db"
    store = RecordStore.open(db)
    try:
        filled = fill_store(store, 1500, patients=7, devices=3)  # 3000 Observations
        total = len(filled.identifiers)
        server.faults(latency_ms=40)  # slow enough that a kill lands mid-drain
        rng = random.Random(20260301)
        kills_mid_drain = 0
        progress = [0]
        for _ in range(12):
            child = start_child(db, server)
            # wait until this run has delivered something, then kill it a random moment later
            deadline = time.monotonic() + 30
            while sent_count(store) == progress[-1] and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.5))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
            sent = sent_count(store)
            progress.append(sent)
            if progress[-2] < sent < total:
                kills_mid_drain += 1
            if sent == total:
                break
        assert kills_mid_drain >= 5, progress
        server.faults(latency_ms=0)
        child = start_child(db, server)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                counts = store.outbox_counts()
                if counts[OutboxState.PENDING] + counts[OutboxState.SENDING] == 0:
                    break
                time.sleep(0.2)
        finally:
            child.send_signal(signal.SIGTERM)
            _, err = child.communicate(timeout=20)
        assert child.returncode == 0, err.decode()[-2000:]
        counts = store.outbox_counts()
        assert counts[OutboxState.SENT] == total and counts[OutboxState.DEAD] == 0, counts
        stored = server.stored_identifiers()
        assert stored == {identifier: 1 for identifier in filled.identifiers}
        assert server.stats()["resources"]["Patient"] == 7
    finally:
        store.close()
