"""Wiring for the sync process: config -> store + FHIR client + worker; `serve` (daemon) and `push` (one-shot)."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from healthhut.sync.status import SyncStatus, read_status
from healthhut.sync.worker import DrainReport, SyncSettings, SyncWorker, utc_now

if TYPE_CHECKING:
    from healthhut.config import Config, PlatformConfig
    from healthhut.sync.fhir_client import FhirClient

log = logging.getLogger(__name__)


def settings_from_config(platform: PlatformConfig, **overrides: Any) -> SyncSettings:
    # A lease must outlive the slowest honest attempt (connect + read, resent once), or a second worker
    # would claim rows still in flight (harmless thanks to conditional create, but wasteful).
    lease = max(60.0, 4 * (platform.timeout_connect + platform.timeout_read))
    values: dict[str, Any] = {"bundle_type": platform.bundle_type, "batch_size": platform.batch_size,
                              "concurrency": platform.concurrency, "lease": timedelta(seconds=lease)}
    values.update(overrides)
    return SyncSettings(**values)


@dataclass
class PushResult:
    report: DrainReport
    status: SyncStatus


def _client(platform: PlatformConfig, settings: SyncSettings) -> FhirClient:
    """One connection per bundle in flight (the pool never holds more), gzip as configured."""
    from healthhut.sync.fhir_client import FhirClient

    return FhirClient(platform, max_connections=settings.concurrency,
                      compress_requests=platform.compress_requests)


async def _open_store(config: Config) -> Any:
    from healthhut.records.store import RecordStore

    return await asyncio.to_thread(RecordStore.open, config.store.path)


async def _remaining(store: Any) -> int:
    status = await asyncio.to_thread(read_status, store, now=utc_now())
    return status.deliverable


async def push(config: Config, *, until_empty: bool = False, max_wait: float = 600.0,
               settings: SyncSettings | None = None) -> PushResult:
    """Deliver what is due now (and with `until_empty`, wait out retries up to `max_wait` seconds)."""
    store = await _open_store(config)
    try:
        chosen = settings or settings_from_config(config.platform)
        async with _client(config.platform, chosen) as client:
            worker = SyncWorker(store, client, chosen)
            report = await worker.drain(until_empty=until_empty, max_wait=max_wait,
                                        remaining=lambda: _remaining(store))
        status = await asyncio.to_thread(read_status, store, now=utc_now())
    finally:
        await asyncio.to_thread(store.close)
    return PushResult(report=report, status=status)


async def serve(config: Config, stop: asyncio.Event, *, settings: SyncSettings | None = None) -> None:
    """The long-lived sync service: release leases of a crashed predecessor, then drain until `stop`."""
    store = await _open_store(config)
    try:
        released = await asyncio.to_thread(store.release_expired_leases, now=utc_now())
        if released:
            log.info("released %d outbox rows left in flight by a previous run", released)
        chosen = settings or settings_from_config(config.platform)
        async with _client(config.platform, chosen) as client:
            log.info("sync service started (bundle type %s, up to %d records per bundle)",
                     chosen.bundle_type, chosen.batch_size)
            await SyncWorker(store, client, chosen).run_forever(stop)
    finally:
        await asyncio.to_thread(store.close)
    log.info("sync service stopped")


def run_sync(config: Config, *, settings: SyncSettings | None = None) -> None:
    """`healthhut run sync`: serve until SIGTERM/SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop, settings=settings)

    asyncio.run(main())
