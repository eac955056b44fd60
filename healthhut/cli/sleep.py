"""`healthhut sleep analyze|import`: overnight recordings (EDF/EDF+, Viatom files, stored readings) -> report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthhut.cli.common import console, open_store, parse_patient, print_json, state

if TYPE_CHECKING:
    from datetime import datetime, tzinfo

    from healthhut.readings import Reading
    from healthhut.records.sleep.analysis import AnalysisSettings, NightAnalysis
    from healthhut.records.sleep.series import NightRecording

app = typer.Typer(no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document with stable keys.")]
PlotOption = Annotated[Path | None, typer.Option("--plot", help="Write the night's plot as PNG here "
                                                 "(needs the 'plot' extra: matplotlib).")]
RuleOption = Annotated[str, typer.Option("--rule", help="Hypopnea desaturation rule: 3 (AASM 1A, "
                                         "recommended) or 4 (AASM 1B).")]
ChannelOption = Annotated[list[str] | None, typer.Option(
    "--channel", help="EDF signal for a role, ROLE=LABEL with ROLE spo2, pulse, airflow or effort; repeatable.")]
TimezoneOption = Annotated[str | None, typer.Option("--timezone", help="IANA zone the recorder's clock ran in "
                                                    "(default: the site's).")]


@dataclass(frozen=True)
class LoadedNight:
    """A file or stored reading, ready for analysis and (for files) for storing."""

    reading: Reading
    night: NightRecording


def _settings(rule: str) -> AnalysisSettings:
    from healthhut.errors import UsageError
    from healthhut.records.sleep.airflow import HypopneaRule
    from healthhut.records.sleep.analysis import AnalysisSettings

    rules = {"3": HypopneaRule.AASM_1A_3PCT, "3%": HypopneaRule.AASM_1A_3PCT,
             "4": HypopneaRule.AASM_1B_4PCT, "4%": HypopneaRule.AASM_1B_4PCT}
    if rule not in rules:
        raise UsageError("--rule is 3 (AASM 1A) or 4 (AASM 1B)")
    return AnalysisSettings(hypopnea_rule=rules[rule])


def _channels(values: list[str] | None) -> dict[str, str]:
    from healthhut.errors import UsageError

    out: dict[str, str] = {}
    for value in values or []:
        role, sep, label = value.partition("=")
        if not sep or role not in ("spo2", "pulse", "airflow", "effort") or not label.strip():
            raise UsageError("--channel takes ROLE=LABEL with ROLE spo2, pulse, airflow or effort")
        out[role] = label
    return out


def _file_digest(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def load_file(path: Path, *, tz: tzinfo, channels: dict[str, str], received_at: datetime) -> LoadedNight:
    """EDF/EDF+ or a Viatom stored file -> Reading + NightRecording; SleepDataError/DecodeError if unreadable.

    A file has no Bluetooth address: the device key is the recorder's EDF "equipment" name, else a digest of
    the file, so importing the same file twice is recognised as a duplicate by the store.
    """
    from healthhut.errors import SleepDataError
    from healthhut.readings import DeviceIdentity, Transport

    try:
        with path.open("rb") as fh:
            head = fh.read(256)
    except OSError as exc:
        raise SleepDataError(f"cannot read the recording file: {exc.strerror or exc}") from None
    if head[:8] in (b"0       ", b"\xffBIOSEMI"):
        from healthhut.records.sleep.edf_import import read_edf
        from healthhut.records.sleep.series import reading_from_night

        night = read_edf(path, tz=tz, channels=channels)
        device = DeviceIdentity(transport=Transport.FILE, model="edf",
                                serial=night.equipment or f"file-{_file_digest(path)}")
        return LoadedNight(reading_from_night(night, device, received_at), night)
    if head[:1] in (b"\x03", b"\x05") and len(head) >= 40:
        from healthhut.drivers.codecs.base import ReadingContext
        from healthhut.drivers.codecs.viatom_file import decode_viatom_file, viatom_file_reading
        from healthhut.records.sleep.series import night_from_reading

        data = path.read_bytes()
        device = DeviceIdentity(transport=Transport.FILE, manufacturer="Viatom", model="O2 file",
                                serial=f"file-{_file_digest(path)}")
        reading = viatom_file_reading(decode_viatom_file(data),
                                      ReadingContext(device=device, received_at=received_at, timezone=tz))
        return LoadedNight(reading, night_from_reading(reading))
    raise SleepDataError("not a recording this version reads (EDF/EDF+ or a Viatom O2 stored file)",
                         advice="Contec .spo/.spo2 files are not supported yet")


def _tz(ctx: typer.Context, name: str | None) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from healthhut.errors import UsageError

    if name is None:
        return state(ctx).config.site.tz
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {name!r}") from None


def _write_plot(analysis: NightAnalysis, plot: Path | None) -> bytes | None:
    if plot is None:
        return None
    from healthhut.records.sleep.plot import render_night_png

    png = render_night_png(analysis)
    plot.write_bytes(png)
    return png


def _print_summary(analysis: NightAnalysis, extra: dict[str, Any] | None = None) -> None:
    from rich.table import Table

    out = console()
    data = analysis.to_json()
    table = Table(title="Overnight screening", show_header=False)
    labels = [("ahi", "REI/AHI (/h)"), ("odi3", "ODI3 (/h)"), ("odi4", "ODI4 (/h)"), ("t90_minutes", "T90 (min)"),
              ("ct90_percent", "CT90 (%)"), ("nadir_spo2", "nadir SpO2 (%)"), ("mean_spo2", "mean SpO2 (%)"),
              ("longest_apnea_seconds", "longest apnea (s)"), ("apnea_count", "apneas"),
              ("hypopnea_count", "hypopneas"), ("pulse_mean", "mean pulse (/min)"), ("valid_hours", "valid hours"),
              ("severity", "severity"), ("hypoxaemia", "hypoxaemia (nadir grade)")]
    for key, label in labels:
        value = data[key]
        table.add_row(label, "-" if value is None else str(value))
    out.print(table)
    out.print(f"data quality: {analysis.data_quality}")
    if analysis.insufficient:
        out.print("[bold red]insufficient recording: repeat the study[/]")
    shown = [e for e in analysis.events if e.kind != "desaturation"] or list(analysis.events)
    if shown:
        events = Table(title=f"Events ({len(shown)} shown)")
        for column in ("kind", "start", "duration s", "SpO2 drop"):
            events.add_column(column)
        for e in sorted(shown, key=lambda e: -e.duration_s)[:15]:
            events.add_row(e.kind, f"{e.start:%H:%M:%S}", f"{e.duration_s:.0f}",
                           "-" if e.spo2_drop is None else f"{e.spo2_drop:.0f}")
        out.print(events)
    out.print(f"rules: {analysis.rules}")
    for key, value in (extra or {}).items():
        out.print(f"{key}: {value}")


@app.command("analyze")
def analyze_command(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="EDF/EDF+ file or Viatom O2 stored file.")] = None,
    reading_id: Annotated[int | None, typer.Option("--reading", help="Analyse a stored reading by id.")] = None,
    as_json: JsonOption = False,
    plot: PlotOption = None,
    rule: RuleOption = "3",
    channel: ChannelOption = None,
    timezone: TimezoneOption = None,
) -> None:
    """Analyse one night: REI/AHI, ODI3/ODI4, T90, nadir, longest apnea, events, severity, rules used."""
    from datetime import UTC, datetime

    from healthhut.errors import UsageError
    from healthhut.records.sleep.analysis import analyse_night
    from healthhut.records.sleep.series import night_from_reading

    if (file is None) == (reading_id is None):
        raise UsageError("give either a FILE or --reading ID")
    settings = _settings(rule)
    if file is not None:
        night = load_file(file, tz=_tz(ctx, timezone), channels=_channels(channel),
                          received_at=datetime.now(UTC)).night
    else:
        store = open_store(ctx)
        try:
            night = night_from_reading(store.get_reading(int(reading_id or 0)))
        finally:
            store.close()
    analysis = analyse_night(night, settings)
    _write_plot(analysis, plot)
    if as_json:
        print_json(analysis.to_json())
    else:
        _print_summary(analysis, {"plot": plot} if plot else None)


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="EDF/EDF+ file or Viatom O2 stored file.")],
    patient: Annotated[str, typer.Option("--patient", help="The resident: SYSTEM|VALUE or a bare id.")],
    as_json: JsonOption = False,
    plot: PlotOption = None,
    report: Annotated[Path | None, typer.Option("--report", help="Also write the FHIR DiagnosticReport "
                                                "(JSON) here.")] = None,
    rule: RuleOption = "3",
    channel: ChannelOption = None,
    timezone: TimezoneOption = None,
) -> None:
    """Import a night into the store and print its summary: the night Observation, its summaries and the
    DiagnosticReport grouping them (with the plot when matplotlib is installed), each with its outbox row, in
    one transaction, through the same Ingestor as live readings.

    The file is read and analysed completely before anything is written: a broken file stores nothing.
    """
    from datetime import UTC, datetime

    from healthhut.errors import ReadingError
    from healthhut.gateway.ingest import Ingestor, IngestStatus
    from healthhut.readings import ReadingKind
    from healthhut.records.normalise import NormaliseSettings
    from healthhut.records.observations import ObservationContext, PendingObservation
    from healthhut.records.ranges import ranges_from_mapping
    from healthhut.records.sleep.analysis import analyse_night
    from healthhut.records.sleep.fhir import night_builder

    config = state(ctx).config
    patient_ref = parse_patient(ctx, patient)
    settings = _settings(rule)
    now = datetime.now(UTC)
    loaded = load_file(file, tz=_tz(ctx, timezone), channels=_channels(channel), received_at=now)
    analysis = analyse_night(loaded.night, settings)
    png = _write_plot(analysis, plot)  # asked for: a missing matplotlib is an error here, not an omission
    build_night = night_builder(settings, analysis=analysis, png=png)
    built: list[PendingObservation] = []

    def build(context: ObservationContext) -> list[PendingObservation]:
        built[:] = build_night(context)  # kept to print the report; the store keeps the validated text
        return built

    normalise = NormaliseSettings(site_id=config.site.id, ranges=ranges_from_mapping(config.ranges),
                                  builders={ReadingKind.OXIMETRY_SERIES: build})
    store = open_store(ctx)
    try:
        outcome = Ingestor(store, normalise, site_name=config.site.name).ingest_reading(
            loaded.reading, patient_ref, now=now)
    finally:
        store.close()
    if outcome.status is IngestStatus.REJECTED:
        raise ReadingError(outcome.reason or "the night was refused")
    diagnostic = next((p.resource for p in built if p.resource["resourceType"] == "DiagnosticReport"), None)
    if report is not None and diagnostic is None:
        typer.echo("no DiagnosticReport written: recordings under an hour get the night Observation only", err=True)
    elif report is not None:
        from healthhut.records import fhir_json

        report.write_text(fhir_json.dumps(diagnostic), encoding="utf-8")
    stored = {"outcome": outcome.status.value, "reading_id": outcome.reading_id,
              "observation_ids": list(outcome.observation_ids),
              "duplicates": len(built) - len(outcome.observation_ids)}
    if as_json:
        document = analysis.to_json()
        document["stored"] = stored
        document["diagnostic_report"] = diagnostic  # also stored, and sent with the Observations
        print_json(document)
    else:
        _print_summary(analysis, {"stored": f"{outcome.status.value}, reading {outcome.reading_id}, "
                                            f"{len(outcome.observation_ids)} records"})
