"""Sync throughput and memory against the loopback Medplum FHIR server (tests/fhir_server).

    .venv/bin/python benchmarks/sync.py            # full: 20,000 records; 10k vs 100k memory check
    .venv/bin/python benchmarks/sync.py --quick    # smaller numbers, for a smoke run

1. 30 ms added to every request (a hut's mobile uplink): our worker draining 20,000 stored Observations vs a
   naive client that POSTs one resource per request without keep-alive (measured on a subset; rate compared).
2. No added latency: our drain rate vs the server's own ceiling (the same Bundles, pre-built in memory, posted
   straight to it with the same concurrency and keep-alive).
3. Peak RSS of the sync process draining 10,000 vs 100,000 records (streamed from SQLite in claimed batches).

Each drain runs in a fresh child process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from sync_support import FhirTestServer, fill_store  # noqa: E402

from healthhut.records.store import OutboxState, RecordStore  # noqa: E402


def build_store(path: Path, observations: int) -> list[str]:
    store = RecordStore.open(path)
    try:
        # 2 Observations per BP reading; 50 residents, 2 cuffs, a resident's readings adjacent like at a desk
        filled = fill_store(store, observations // 2, patients=50, devices=2)
    finally:
        store.close()
    return filled.identifiers


# ---- child: one drain in its own process ---------------------------------------------------------------
async def child_drain(db: str, base_url: str, concurrency: int, batch_size: int) -> dict[str, Any]:
    from healthhut.config import PlatformConfig
    from healthhut.sync.fhir_client import FhirClient
    from healthhut.sync.worker import SyncSettings, SyncWorker

    store = await asyncio.to_thread(RecordStore.open, db)
    settings = SyncSettings(batch_size=batch_size, concurrency=concurrency)
    platform = PlatformConfig(base_url=base_url, timeout_read=60)
    started = time.perf_counter()
    async with FhirClient(platform, max_connections=concurrency) as client:
        worker = SyncWorker(store, client, settings)
        report = await worker.drain()
    elapsed = time.perf_counter() - started
    counts = await asyncio.to_thread(store.outbox_counts)
    store.close()
    return {"sent": report.sent, "requests": report.requests, "seconds": elapsed, "rate": report.sent / elapsed,
            "bundle_size": worker.sizer.current, "left": counts[OutboxState.PENDING],
            "peak_rss_mib": peak_rss_mib()}


def peak_rss_mib() -> float:
    """This process's own peak RSS. Not getrusage's ru_maxrss: Linux carries that across execve, so a child
    started by a big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(db: Path, server: FhirTestServer, concurrency: int, batch_size: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", str(db), server.base_url, str(concurrency),
                          str(batch_size)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- the comparison clients ----------------------------------------------------------------------------
def naive_client(db: Path, server: FhirTestServer, count: int) -> float:
    """One POST per resource, a new TCP connection each time (urllib closes after every request)."""
    from healthhut.sync.bundles import location_reference, prepare_record

    store = RecordStore.open(db)
    items = store.claim_batch(limit=count, now=_now(), lease=_lease(), worker="naive")
    store.close()
    resolved: dict[str, str] = {}

    def post(resource_type: str, text: str, if_none_exist: str | None) -> str | None:
        headers = {"Content-Type": "application/fhir+json", "Connection": "close"}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist  # conditional create, as the worker does
        request = urllib.request.Request(f"{server.base_url}/{resource_type}", data=text.encode(),
                                         headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.headers.get("Location") or json.loads(response.read()).get("id")

    started = time.perf_counter()
    for item in items:
        record = prepare_record(item)
        text = record.observation_text
        for support in record.supporting:
            if support.full_url not in resolved:
                location = post(support.resource_type, support.text, support.if_none_exist)
                resolved[support.full_url] = location_reference(location) or f"{support.resource_type}/{location}"
            text = text.replace(f'"{support.full_url}"', json.dumps(resolved[support.full_url]))
        post("Observation", text, record.if_none_exist)
    return len(items) / (time.perf_counter() - started)


async def ceiling(db: Path, server: FhirTestServer, bundle_size: int, concurrency: int) -> float:
    """The server's own rate: the same transaction Bundles, pre-built in memory, posted with keep-alive."""
    import httpx

    from healthhut.sync.bundles import (
        location_reference,
        prepare_record,
        prerequisite_bundle,
        response_entries,
        transaction_bundle,
    )

    store = await asyncio.to_thread(RecordStore.open, db)
    items = await asyncio.to_thread(store.claim_batch, limit=10**9, now=_now(), lease=_lease(), worker="ceiling")
    store.close()
    records = [prepare_record(i) for i in items]
    # Patients and Devices first (as our worker ends up doing after its first bundles), so every timed
    # bundle carries Observations only, references already resolved: the most favourable case for the server.
    resolved: dict[str, str] = {}
    first = prerequisite_bundle(records, resolved)
    if first is not None:
        rows = response_entries(await asyncio.to_thread(_post_json, server.base_url, first.body))
        for support, (_, location, _) in zip(first.supporting, rows, strict=True):
            resolved[support.full_url] = str(location_reference(location))
    bodies = [transaction_bundle(records[i:i + bundle_size], resolved=resolved).body
              for i in range(0, len(records), bundle_size)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.base_url + "/", limits=limits, timeout=60) as client:

        async def pump() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post("", content=body, headers={"Content-Type": "application/fhir+json"})
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(pump() for _ in range(concurrency)))
    return len(records) / (time.perf_counter() - started)


def _post_json(url: str, body: bytes) -> Any:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/fhir+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _lease() -> Any:
    from datetime import timedelta

    return timedelta(hours=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--only-memory", action="store_true", help="Run only the 10k vs 100k memory check.")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        db, base_url, concurrency, batch_size = args.child
        print(json.dumps(asyncio.run(child_drain(db, base_url, int(concurrency), int(batch_size)))))
        return

    n = 2_000 if args.quick else 20_000
    naive_n = 200 if args.quick else 1_000
    small, large = (2_000, 10_000) if args.quick else (10_000, 100_000)
    server = FhirTestServer()
    work = Path(tempfile.mkdtemp(prefix="healthhut-sync-bench-"))
    try:
        if not args.only_memory:
            throughput(work, server, n, naive_n, args.concurrency, args.batch_size)
        memory(work, server, small, large, args.concurrency, args.batch_size)
    finally:
        server.stop()


def throughput(work: Path, server: FhirTestServer, n: int, naive_n: int, concurrency: int, batch_size: int) -> None:
    print(f"building a store of {n} Observations ...", flush=True)
    build_store(work / "a.db", n)
    for name in ("naive.db", "ceiling.db", "zero.db"):
        (work / name).write_bytes((work / "a.db").read_bytes())

    server.reset()
    server.faults(latency_ms=30)
    ours = run_child(work / "a.db", server, concurrency, batch_size)
    print(f"30 ms latency, healthhut sync: {ours['sent']} records in {ours['seconds']:.1f} s = "
          f"{ours['rate']:.0f} records/s ({ours['requests']} requests, bundle size settled at "
          f"{ours['bundle_size']}), peak RSS {ours['peak_rss_mib']:.0f} MiB", flush=True)
    server.reset()
    server.faults(latency_ms=30)
    naive = naive_client(work / "naive.db", server, naive_n)
    print(f"30 ms latency, naive client (one POST per resource, no keep-alive, {naive_n} records): "
          f"{naive:.1f} records/s -> healthhut is {ours['rate'] / naive:.1f}x (target >= 10x)", flush=True)

    server.reset()
    zero = run_child(work / "zero.db", server, concurrency, batch_size)
    server.reset()
    top = asyncio.run(ceiling(work / "ceiling.db", server, zero["bundle_size"], concurrency))
    print(f"0 ms latency, healthhut sync: {zero['rate']:.0f} records/s; server ceiling with the same "
          f"bundles pre-built: {top:.0f} records/s -> {100 * zero['rate'] / top:.0f} % (target >= 80 %)",
          flush=True)


def memory(work: Path, server: FhirTestServer, small: int, large: int, concurrency: int, batch_size: int) -> None:
    rss = {}
    for size in (small, large):
        print(f"building a store of {size} Observations ...", flush=True)
        path = work / f"mem{size}.db"
        build_store(path, size)
        server.reset()
        result = run_child(path, server, concurrency, batch_size)
        rss[size] = result["peak_rss_mib"]
        print(f"drain of {size}: {result['rate']:.0f} records/s, peak RSS {rss[size]:.0f} MiB", flush=True)
    print(f"memory: {rss[large]:.0f} MiB for {large} vs {rss[small]:.0f} MiB for {small} "
          f"({'flat' if rss[large] <= rss[small] * 1.1 else 'GROWS'})")


if __name__ == "__main__":
    main()
