"""`healthhut replay` and `healthhut demo`: feed captured frames through the daemon's ingest path."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthhut.cli.common import console, open_store, parse_patient, print_json, state

if TYPE_CHECKING:
    from healthhut.config import Config
    from healthhut.records.drafts import PatientRef
    from healthhut.records.store import RecordStore

DEMO_PATIENT = "urn:healthhut:demo|demo-resident-1"


def replay_capture(store: RecordStore, config: Config, capture: Path,
                   patient: PatientRef | None) -> list[dict[str, Any]]:
    """Replay every frame of a capture; returns one outcome entry per frame (no values in it)."""
    from healthhut.drivers.capture import read_capture
    from healthhut.drivers.codecs.base import Codec, ReadingContext, SingleFrameCodec
    from healthhut.drivers.codecs.registry import get_codec
    from healthhut.gateway.ingest import Ingestor
    from healthhut.records.normalise import NormaliseSettings
    from healthhut.records.ranges import ranges_from_mapping

    settings = NormaliseSettings(site_id=config.site.id, ranges=ranges_from_mapping(config.ranges))
    ingestor = Ingestor(store, settings, site_name=config.site.name)
    codecs: dict[str, Codec] = {}
    entries: list[dict[str, Any]] = []
    for line in read_capture(capture):
        codec = codecs.get(line.codec) or codecs.setdefault(line.codec, get_codec(line.codec))
        context = ReadingContext(device=line.device, received_at=line.received_at,
                                 timezone=config.site.tz)
        chunks = [line.data] if isinstance(codec, SingleFrameCodec) else [f.data for f in codec.frames(line.data)]
        for chunk in chunks:
            for outcome in ingestor.ingest_frame(codec, chunk, context, patient, now=line.received_at):
                entry: dict[str, Any] = {"line": line.line_number, "codec": line.codec,
                                         "status": outcome.status.value}
                if outcome.reading_id is not None:
                    entry["reading_id"] = outcome.reading_id
                if outcome.observation_ids:
                    entry["observation_ids"] = list(outcome.observation_ids)
                if outcome.reason:
                    entry["reason"] = outcome.reason
                entries.append(entry)
    return entries


def _report(entries: list[dict[str, Any]], as_json: bool) -> None:
    counts = Counter(entry["status"] for entry in entries)
    if as_json:
        print_json({"frames": entries, "counts": dict(sorted(counts.items()))})
        return
    out = console()
    for entry in entries:
        detail = f" ({entry['reason']})" if "reason" in entry else ""
        out.print(f"line {entry['line']:>4} {entry['codec']:<22} {entry['status']}{detail}")
    out.print("total: " + ", ".join(f"{count} {status}" for status, count in sorted(counts.items())))


def replay_command(
    ctx: typer.Context,
    capture: Annotated[Path, typer.Argument(help="Capture file (JSON lines) from `devices sniff --record`.")],
    patient: Annotated[str | None, typer.Option("--patient", help="Attribute every reading to this resident "
                                                "(SYSTEM|VALUE or a bare id); otherwise they wait unassigned.")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Feed a capture through codec -> Reading -> records -> store, exactly as the daemon does."""
    patient_ref = parse_patient(ctx, patient) if patient else None
    store = open_store(ctx)
    try:
        entries = replay_capture(store, state(ctx).config, capture, patient_ref)
    finally:
        store.close()
    _report(entries, as_json)


def demo_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Replay the bundled sample capture into the local store, then show the demo resident's records."""
    from importlib.resources import as_file, files

    from healthhut.cli.records import show_patient

    patient_ref = parse_patient(ctx, DEMO_PATIENT)
    store = open_store(ctx)
    try:
        with as_file(files("healthhut.samples") / "demo-capture.jsonl") as capture:
            entries = replay_capture(store, state(ctx).config, capture, patient_ref)
        if not as_json:
            _report(entries, as_json=False)
            console().print(f"\nstore: {state(ctx).config.store.path}\n")
        show_patient(store, patient_ref, since=None, as_json=as_json, tz=state(ctx).config.site.tz)
    finally:
        store.close()
