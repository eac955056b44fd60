"""`healthhut replay` and `healthhut demo`: feed captured frames through the daemon's ingest path."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthhut.cli.common import console, open_store, parse_patient, print_json, state

if TYPE_CHECKING:
    from healthhut.config import Config
    from healthhut.gateway.ingest import IngestOutcome
    from healthhut.records.drafts import PatientRef
    from healthhut.records.store import RecordStore

DEMO_PATIENT = "urn:healthhut:demo|demo-resident-1"


REPLAY_BATCH_FRAMES = 256  # frames per group commit: one fsync per batch, bounded memory for any capture size


def replay_capture(store: RecordStore, config: Config, capture: Path,
                   patient: PatientRef | None) -> list[dict[str, Any]]:
    """Replay every frame of a capture; returns one outcome entry per frame (no values in it).

    Consecutive frames of one codec are ingested together (`Ingestor.ingest_frames`, one commit per batch
    of up to REPLAY_BATCH_FRAMES); each frame keeps its line's context and is stored at the line's time,
    so the entries and rows are those of ingesting the frames one by one.
    """
    from healthhut.drivers.capture import read_capture
    from healthhut.drivers.codecs.base import Codec, ReadingContext, SingleFrameCodec
    from healthhut.drivers.codecs.registry import get_codec
    from healthhut.gateway.ingest import IncomingFrame, Ingestor
    from healthhut.records.normalise import NormaliseSettings
    from healthhut.records.ranges import ranges_from_mapping

    settings = NormaliseSettings(site_id=config.site.id, ranges=ranges_from_mapping(config.ranges))
    ingestor = Ingestor(store, settings, site_name=config.site.name)
    codecs: dict[str, Codec] = {}
    entries: list[dict[str, Any]] = []
    batch: list[IncomingFrame] = []
    batch_lines: list[int] = []
    batch_codec: str | None = None

    def flush() -> None:
        if batch_codec is None or not batch:
            return
        frames, lines = batch.copy(), batch_lines.copy()
        batch.clear()  # before ingesting: a batch that raises is not tried a second time by the `finally`
        batch_lines.clear()
        outcomes_per_frame = ingestor.ingest_frames(codecs[batch_codec], frames, patient)
        for line_number, outcomes in zip(lines, outcomes_per_frame, strict=True):
            entries.extend(_entry(line_number, batch_codec, outcome) for outcome in outcomes)

    try:
        for line in read_capture(capture):
            codec = codecs.get(line.codec) or codecs.setdefault(line.codec, get_codec(line.codec))
            context = ReadingContext(device=line.device, received_at=line.received_at,
                                     timezone=config.site.tz)
            chunks = [line.data] if isinstance(codec, SingleFrameCodec) else [f.data for f in codec.frames(line.data)]
            for chunk in chunks:
                if line.codec != batch_codec or len(batch) >= REPLAY_BATCH_FRAMES:
                    flush()
                    batch_codec = line.codec
                batch.append(IncomingFrame(chunk, context, now=line.received_at))
                batch_lines.append(line.line_number)
    finally:  # a bad line (or ^C) later in the capture must not lose the frames read before it
        flush()
    return entries


def _entry(line_number: int, codec: str, outcome: IngestOutcome) -> dict[str, Any]:
    entry: dict[str, Any] = {"line": line_number, "codec": codec, "status": outcome.status.value}
    if outcome.reading_id is not None:
        entry["reading_id"] = outcome.reading_id
    if outcome.observation_ids:
        entry["observation_ids"] = list(outcome.observation_ids)
    if outcome.reason:
        entry["reason"] = outcome.reason
    return entry


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
