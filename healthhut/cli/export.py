"""Streaming exports for `healthhut records export`: a FHIR collection Bundle or CSV rows.

Both stream from the database page by page: an export of a whole hut's history never sits in memory.
The stored Observation texts are written as they are (they were validated once, when stored).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from healthhut.cli.views import observation_entry

if TYPE_CHECKING:
    from healthhut.records.drafts import PatientRef
    from healthhut.records.store import RecordStore

CSV_COLUMNS = ("observation_id", "reading_id", "effective_at", "code", "display", "values", "interpretation",
               "time_quality", "device", "sync")


@contextmanager
def _destination(output: Path | None) -> Iterator[TextIO]:
    """Standard output, or a new file created 0600 (exports hold health data)."""
    if output is None:
        yield sys.stdout
        return
    from healthhut.errors import UsageError

    try:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        yield handle


def write_export(store: RecordStore, *, fmt: str, patient: PatientRef | None, since: datetime | None,
                 output: Path | None) -> None:
    with _destination(output) as out:
        if fmt == "csv":
            _write_csv(store, out, patient, since)
        else:
            _write_bundle(store, out, patient, since)


def _write_bundle(store: RecordStore, out: TextIO, patient: PatientRef | None, since: datetime | None) -> None:
    out.write('{"resourceType":"Bundle","type":"collection","timestamp":')
    out.write(json.dumps(datetime.now(UTC).isoformat(timespec="seconds")))
    out.write(',"entry":[')
    first = True
    for full_url, text in store.referenced_resources(patient=patient, since=since):
        out.write(("" if first else ",") + '{"fullUrl":' + json.dumps(full_url) + ',"resource":' + text + "}")
        first = False
    for text in store.iter_observation_json(patient=patient, since=since):
        out.write(("" if first else ",") + '{"resource":' + text + "}")
        first = False
    out.write("]}\n")


def _write_csv(store: RecordStore, out: TextIO, patient: PatientRef | None, since: datetime | None) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for view in store.iter_observation_views(patient=patient, since=since):
        entry = observation_entry(view)
        values = "; ".join(
            f"{v['code']}={v['value']} {v['unit']}" if "value" in v else (
                f"{v['code']}: {v['conclusion']}" if "conclusion" in v else f"{v['code']}=absent:{v.get('absent', '')}")
            for v in entry["values"])
        writer.writerow([entry["observation_id"], entry["reading_id"], entry["effective_at"], entry["code"],
                         entry["display"], values, entry["interpretation"] or "", entry["time_quality"],
                         entry["device"], entry["sync"] or ""])
