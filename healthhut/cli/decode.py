"""`healthhut decode`: decode raw frames offline and show fields, Readings and (with --fhir) Observations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthhut.cli.common import console, parse_patient, print_json, state

if TYPE_CHECKING:
    from healthhut.readings import Reading


def reading_summary(reading: Reading) -> dict[str, Any]:
    """A readable, JSON-ready view of a Reading (values keep the device's decimal resolution)."""
    values: dict[str, Any] = {}
    for metric, quantity in reading.values.items():
        if quantity.value is not None:
            values[metric.value] = {"value": str(quantity.value), "unit": quantity.unit.value}
        else:
            values[metric.value] = {"absent": quantity.absent.value if quantity.absent else None,
                                    "unit": quantity.unit.value}
    summary: dict[str, Any] = {
        "kind": reading.kind.value,
        "values": values,
        "measured_at": reading.measured_at.isoformat() if reading.measured_at else None,
        "time_source": reading.time_source.value,
        "effective_at": reading.effective_at.isoformat(),
        "status": sorted(flag.value for flag in reading.status),
        "device": reading.device.key,
    }
    for name in ("sequence", "patient_hint", "body_site"):
        if getattr(reading, name) is not None:
            summary[name] = getattr(reading, name)
    if reading.clock_skew is not None:
        summary["clock_skew_seconds"] = reading.clock_skew.total_seconds()
    for metric, series in reading.series.items():
        summary.setdefault("series", {})[metric.value] = {
            "start": series.start.isoformat(), "period_seconds": series.period.total_seconds(),
            "unit": series.unit.value, "samples": len(series.samples)}
    return summary


def _parse_hex(chunks: list[str]) -> list[bytes]:
    from healthhut.errors import UsageError

    frames = []
    for chunk in chunks:
        cleaned = chunk.replace(":", "").replace("-", "").replace(" ", "")
        try:
            frames.append(bytes.fromhex(cleaned))
        except ValueError:
            raise UsageError(f"not hexadecimal: {chunk!r}") from None
    return frames


def decode_command(
    ctx: typer.Context,
    codec_name: Annotated[str, typer.Argument(metavar="CODEC", help="Codec name, e.g. bls.measurement.")],
    hex_frames: Annotated[list[str], typer.Argument(metavar="HEX...", help="Frames (GATT values) or a byte "
                                                    "stream (serial codecs) in hex.")],
    fhir: Annotated[bool, typer.Option("--fhir", help="Also show the FHIR Observations the store would keep.")]
    = False,
    patient: Annotated[str | None, typer.Option("--patient", help="Resident (SYSTEM|VALUE) for --fhir; "
                                                "without it the Observations are shown as held.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Decode raw device frames: fields, the Reading, and with --fhir the Observations."""
    from datetime import UTC, datetime

    from healthhut.drivers.codecs.base import ReadingContext, SingleFrameCodec, describe
    from healthhut.drivers.codecs.registry import get_codec
    from healthhut.errors import HealthhutError
    from healthhut.readings import DeviceIdentity, Transport

    cli = state(ctx)
    codec = get_codec(codec_name)
    chunks = _parse_hex(hex_frames)
    if isinstance(codec, SingleFrameCodec):
        frames = [(index, chunk, 0) for index, chunk in enumerate(chunks)]
    else:
        found = codec.frames(b"".join(chunks))
        frames = [(frame.offset, frame.data, frame.discarded_before) for frame in found]
    context = ReadingContext(
        device=DeviceIdentity(transport=Transport.FILE, address="00:00:00:00:00:00", name="decode"),
        received_at=datetime.now(UTC), timezone=cli.config.site.tz)
    patient_ref = parse_patient(ctx, patient) if patient else None
    settings = None
    if fhir:
        from healthhut.records.normalise import NormaliseSettings
        from healthhut.records.ranges import ranges_from_mapping

        settings = NormaliseSettings(site_id=cli.config.site.id,
                                     ranges=ranges_from_mapping(cli.config.ranges))
    results: list[dict[str, Any]] = []
    failures = 0
    for position, data, discarded in frames:
        entry: dict[str, Any] = {"position": position, "hex": data.hex()}
        if discarded:
            entry["discarded_before"] = discarded
        try:
            decoded = codec.decode(data)
            readings = codec.readings(decoded, context)
            entry["fields"] = describe(decoded)
            entry["readings"] = [reading_summary(r) for r in readings]
            if settings is not None:
                import json

                from healthhut.records.normalise import observations_for

                entry["observations"] = [
                    json.loads(draft.json) for r in readings for draft in observations_for(r, patient_ref, settings)]
        except HealthhutError as exc:
            failures += 1
            entry["error"] = str(exc)
        results.append(entry)
    if as_json:
        print_json({"codec": codec.name, "frames": results})
    else:
        _print_human(codec.name, results)
    if failures:
        raise typer.Exit(1)


def _print_human(codec_name: str, results: list[dict[str, Any]]) -> None:
    import json

    out = console()
    if not results:
        out.print(f"[yellow]{codec_name}: no frame found[/]")
    for entry in results:
        out.print(f"[bold]{codec_name}[/] frame at {entry['position']}: {entry['hex']}")
        if "discarded_before" in entry:
            out.print(f"  discarded {entry['discarded_before']} byte(s) before it")
        if "error" in entry:
            out.print(f"  [red]error:[/] {entry['error']}")
            continue
        out.print("  fields:   " + json.dumps(entry["fields"], sort_keys=True))
        if not entry["readings"]:
            out.print("  readings: none (display-only or control frame)")
        for reading in entry["readings"]:
            out.print("  reading:  " + json.dumps(reading, sort_keys=True))
        for observation in entry.get("observations", []):
            out.print("  fhir:     " + json.dumps(observation, sort_keys=True))
