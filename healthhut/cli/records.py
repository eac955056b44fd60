"""`healthhut records`: the clinician's first view of what the hut holds: residents, timelines, flags, exports."""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthhut.cli.common import console, open_store, parse_patient, print_json, state
from healthhut.cli.views import observation_entry

if TYPE_CHECKING:
    from healthhut.records.drafts import PatientRef
    from healthhut.records.queries import ObservationView
    from healthhut.records.store import RecordStore

app = typer.Typer(no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
SinceOption = Annotated[datetime | None, typer.Option("--since", help="Only from this time on (ISO-8601).",
                                                      formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S",
                                                               "%Y-%m-%dT%H:%M:%S%z"])]


def _since(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.astimezone()  # a date typed at the desk means the box's local time
    return value


def _print_observations(title: str, views: list[ObservationView], tz: tzinfo) -> None:
    """A table for staff, times on the hut's wall clock (the JSON output keeps offsets)."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("when", "what", "value", "flag", "time", "device", "sync"):
        table.add_column(column)
    for view in views:
        entry = observation_entry(view)
        value_text = ", ".join(
            f"{v['value']} {v['unit']}" if "value" in v else (f"absent ({v['absent']})" if "absent" in v else
                                                              v.get("conclusion", "series"))
            for v in entry["values"])
        flag = entry["interpretation"] or ""
        style = "bold red" if flag in ("HH", "LL") else ("yellow" if flag in ("H", "L") else "")
        when = datetime.fromisoformat(entry["effective_at"]).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        table.add_row(when, str(entry["display"]), value_text,
                      f"[{style}]{flag}[/]" if style else flag, entry["time_quality"], entry["device"],
                      entry["sync"] or "")
    console().print(table)


def show_patient(store: RecordStore, patient: PatientRef, *, since: datetime | None, as_json: bool,
                 tz: tzinfo) -> None:
    from healthhut.errors import UsageError

    summary = store.find_patient(patient.system, patient.value)
    if summary is None:
        raise UsageError("no records for that resident in this hut")
    views = store.patient_timeline(summary.id, since)
    if as_json:
        print_json({"patient": {"id": summary.id, "identifier": {"system": summary.identifier_system,
                                                                  "value": summary.identifier_value}},
                    "observations": [observation_entry(view) for view in views]})
    else:
        _print_observations(f"resident #{summary.id}: {len(views)} observation(s)", views, tz)


@app.command("patients")
def patients_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Residents with records in this hut."""
    store = open_store(ctx)
    try:
        summaries = store.list_patients()
    finally:
        store.close()
    rows: list[dict[str, Any]] = [
        {"id": s.id, "identifier": {"system": s.identifier_system, "value": s.identifier_value},
             "observations": s.observation_count,
             "last_effective_at": s.last_effective_at.isoformat() if s.last_effective_at else None}
            for s in summaries]
    if as_json:
        print_json({"patients": rows})
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} resident(s)")
    for column in ("#", "identifier", "observations", "last measured"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["id"]), row["identifier"]["value"], str(row["observations"]),
                      row["last_effective_at"] or "")
    console().print(table)


@app.command("show")
def show_command(
    ctx: typer.Context,
    patient: Annotated[str, typer.Argument(metavar="PATIENT", help="SYSTEM|VALUE or a bare identifier.")],
    since: SinceOption = None,
    as_json: JsonOption = False,
) -> None:
    """One resident's timeline: values, units, flags, provenance and whether the time was corrected."""
    store = open_store(ctx)
    try:
        show_patient(store, parse_patient(ctx, patient), since=_since(since), as_json=as_json,
                     tz=state(ctx).config.site.tz)
    finally:
        store.close()


@app.command("flagged")
def flagged_command(ctx: typer.Context, since: SinceOption = None, as_json: JsonOption = False) -> None:
    """Observations outside their reference range (H, L, HH, LL), newest first."""
    store = open_store(ctx)
    try:
        views = store.flagged(_since(since))
    finally:
        store.close()
    if as_json:
        print_json({"observations": [observation_entry(view) for view in views]})
    else:
        _print_observations(f"{len(views)} flagged observation(s)", views, state(ctx).config.site.tz)


@app.command("unassigned")
def unassigned_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Readings waiting for a resident (held: not sent to the platform until assigned)."""
    store = open_store(ctx)
    try:
        held = store.unassigned()
    finally:
        store.close()
    rows: list[dict[str, Any]] = [{"reading_id": h.reading_id, "kind": h.kind, "device": h.device_key,
             "effective_at": h.effective_at.isoformat(), "received_at": h.received_at.isoformat(),
             "observation_ids": list(h.observation_ids)} for h in held]
    if as_json:
        print_json({"readings": rows})
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} reading(s) waiting for a resident")
    for column in ("reading", "kind", "device", "measured", "received"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["reading_id"]), row["kind"], row["device"], row["effective_at"], row["received_at"])
    console().print(table)


@app.command("export")
def export_command(
    ctx: typer.Context,
    patient: Annotated[str | None, typer.Option("--patient", help="Only this resident.")] = None,
    since: SinceOption = None,
    fmt: Annotated[str, typer.Option("--format", help="fhir (a Bundle of type collection) or csv.")] = "fhir",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (created 0600); "
                                                "default standard output.")] = None,
) -> None:
    """Export the selection as a FHIR collection Bundle or as CSV rows."""
    from healthhut.cli.export import write_export
    from healthhut.errors import UsageError

    if fmt not in ("fhir", "csv"):
        raise UsageError("--format is fhir or csv")
    patient_ref = parse_patient(ctx, patient) if patient else None
    store = open_store(ctx)
    try:
        write_export(store, fmt=fmt, patient=patient_ref, since=_since(since), output=output)
    finally:
        store.close()
