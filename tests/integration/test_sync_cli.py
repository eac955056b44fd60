"""`healthhut sync status|push|dead|retry` as a staff member runs them, against the loopback FHIR server."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from sync_support import FhirTestServer, fill_store

from healthhut.records.store import RecordStore


def healthhut(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "healthhut", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120)


def test_push_dead_retry_status(server: FhirTestServer, tmp_path: Path) -> None:
    server.reset()
    db = tmp_path / "records.db"
    config = tmp_path / "healthhut.toml"
    config.write_text(f'[store]\npath = "{db}"\n[platform]\nbase_url = "{server.base_url}"\n'
                      'timeout_connect = 2\ntimeout_read = 5\n')
    store = RecordStore.open(db)
    filled = fill_store(store, 5)
    store.close()
    bad = filled.identifiers[3]
    with sqlite3.connect(db) as conn:
        good_json = conn.execute("SELECT resource_json FROM observations WHERE identifier = ?", (bad,)).fetchone()[0]
        conn.execute("UPDATE observations SET resource_json = ? WHERE identifier = ?",
                     (good_json[:-1] + ',"bogusElement":1}', bad))

    pushed = healthhut(config, "sync", "push", "--until-empty", "--max-wait", "60", "--json")
    assert pushed.returncode == 0, pushed.stderr  # the dead letter is not "deliverable"
    report = json.loads(pushed.stdout)
    assert (report["sent"], report["dead"]) == (9, 1)

    dead = healthhut(config, "sync", "dead", "--json")
    assert dead.returncode == 0
    letters = json.loads(dead.stdout)
    assert len(letters) == 1 and "bogusElement" in json.dumps(letters[0]["outcome"])
    assert bad not in dead.stdout and "R100" not in dead.stdout  # no resident identifiers on screen

    assert healthhut(config, "sync", "retry").returncode == 2  # neither ids nor --all
    with sqlite3.connect(db) as conn:  # staff fixed the cause
        conn.execute("UPDATE observations SET resource_json = ? WHERE identifier = ?", (good_json, bad))
    retried = healthhut(config, "sync", "retry", str(letters[0]["id"]))
    assert retried.returncode == 0 and "1 record" in retried.stdout
    assert healthhut(config, "sync", "push").returncode == 0

    status = json.loads(healthhut(config, "sync", "status", "--json").stdout)
    assert status["counts"]["sent"] == 10 and status["deliverable"] == 0
    assert status["last_success_at"] and status["circuit"]["state"] == "closed"
    assert server.stored_identifiers() == {i: 1 for i in filled.identifiers}

    server.faults(down=True)
    try:
        store = RecordStore.open(db)
        fill_store(store, 1, start=100)
        store.close()
        failed = healthhut(config, "sync", "push")
        assert failed.returncode == 1  # something deliverable was left undelivered
        status = json.loads(healthhut(config, "sync", "status", "--json").stdout)
        assert status["deliverable"] == 2 and "connection failed" in status["last_error"]
        assert status["oldest_pending_age_s"] is not None
        human = healthhut(config, "sync", "status")
        assert human.returncode == 0 and "pending 2" in human.stdout
        # stored 2026-03-01 (fill_store's clock): an age in days and hours, not a count of seconds
        assert re.search(r"oldest undelivered: \d+ d( \d+ h)? ago", human.stdout), human.stdout
    finally:
        server.faults(down=False)
