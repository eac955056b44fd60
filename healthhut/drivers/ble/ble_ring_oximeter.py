"""Viatom/Wellue overnight ring oximeter (legacy "Oxy" BLE protocol): stored nights → one series Reading each.

The ring lists its nights as `YYYYMMDDhhmmss` file names; a night is downloaded block by block (FILE_OPEN,
FILE_READ n…, FILE_CLOSE), decoded by `viatom_file` and handed to `commit`. The night's start time (as a
number) is the high-water mark, saved only after `commit` returns, so an interrupted download resumes with
the night it was on and never hands over a night twice.
"""

from __future__ import annotations

import logging
from datetime import tzinfo

from healthhut.drivers.ble.gatt_common import Clock, ClockCheck, Commit, DownloadResult, WatermarkStore, utc_now
from healthhut.drivers.ble.transport_ble import BleConnection, NotificationStream
from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.viatom import (
    RESPONSE_START,
    ViatomAssembler,
    ViatomCommand,
    ViatomInfo,
    ViatomRequest,
    ViatomResponse,
    decode_frame,
    decode_info,
    encode_request,
    file_name_payload,
    set_time_payload,
)
from healthhut.drivers.codecs.viatom_file import decode_viatom_file, viatom_file_reading
from healthhut.errors import DecodeError, DeviceError
from healthhut.readings import DeviceIdentity, Reading, Transport

logger = logging.getLogger(__name__)

SERVICE_UUID = "14839ac4-7d7e-415c-9a42-167340cf2339"
WRITE_UUID = "8b00ace7-eb0b-49b0-bbe9-9aee0a26e1a3"
NOTIFY_UUID = "0734594a-a8e7-4b1a-a6b1-cd5243059a57"
ADVICE_RING = "keep the ring on its charger next to the gateway and try again"


class BleRingOximeterDriver:
    name = "ble.ring-oximeter"
    service_uuid = SERVICE_UUID

    def __init__(self, connection: BleConnection, *, timezone: tzinfo, now: Clock = utc_now,
                 response_timeout: float = 5.0, retries: int = 3) -> None:
        self.connection = connection
        self.timezone = timezone
        self.now = now
        self.response_timeout = response_timeout
        self.retries = retries
        self.identity = DeviceIdentity(transport=Transport.BLE, address=connection.address, name=connection.name)
        self.clock: ClockCheck | None = None
        self.battery: int | None = None
        self.retried = 0
        self._stream: NotificationStream | None = None
        self._assembler = ViatomAssembler(RESPONSE_START)
        self._frames: list[bytes] = []

    async def start(self, *, set_clock: bool = True) -> ViatomInfo:
        """Subscribe, read INFO (identity, battery, clock → skew), then set the ring's clock if asked."""
        self._stream = await self.connection.subscribe(NOTIFY_UUID)
        info = await self.info()
        self.identity = DeviceIdentity(transport=Transport.BLE, address=self.connection.address,
                                       name=self.connection.name, manufacturer="Viatom", model=info.model,
                                       serial=info.serial)
        self.battery = info.battery
        device_time = info.current_time.replace(tzinfo=self.timezone) if info.current_time else None
        skew = self.now() - device_time if device_time is not None else None
        set_to = None
        if set_clock:
            target = self.now().astimezone(self.timezone)
            answer = await self.request(ViatomCommand.CONFIG, payload=set_time_payload(target.replace(tzinfo=None)))
            set_to = target if answer.ok else None
        self.clock = ClockCheck(device_time, skew, present=True, writable=True, set_to=set_to)
        return info

    async def info(self) -> ViatomInfo:
        answer = await self.request(ViatomCommand.INFO)
        try:
            return decode_info(answer.payload)
        except DecodeError as exc:
            raise DeviceError("the ring sent an unreadable INFO answer", advice=ADVICE_RING) from exc

    async def _next_response(self) -> bytes:
        assert self._stream is not None
        while not self._frames:
            self._frames.extend(self._assembler.feed(await self._stream.next(self.response_timeout)))
        return self._frames.pop(0)

    async def request(self, command: int, *, block: int = 0, payload: bytes = b"") -> ViatomResponse:
        """Send one command and wait for its answer; bad CRCs, silence and stale answers are retried."""
        frame = encode_request(ViatomRequest(command, block, payload))
        for attempt in range(self.retries + 1):
            if attempt:
                self.retried += 1
                self._assembler, self._frames = ViatomAssembler(RESPONSE_START), []  # drop half frames
            await self.connection.write(WRITE_UUID, frame, response=True)
            try:
                while True:
                    response = decode_frame(await self._next_response())
                    if isinstance(response, ViatomResponse) and response.block == block:
                        return response
                    # a duplicate or late answer to an earlier block: skip it
            except DecodeError as exc:
                logger.info("ring %s answer rejected (%s); asking again", self.connection.address, exc.reason)
            except DeviceError as exc:
                if self.connection.disconnected.is_set():
                    raise
                logger.info("ring %s silent (%s); asking again", self.connection.address, exc.message)
        raise DeviceError(f"the ring did not answer command 0x{command:02X}", advice=ADVICE_RING)

    async def nights(self) -> list[str]:
        return sorted((await self.info()).files)

    async def download_night(self, name: str) -> Reading:
        """One stored night as an OXIMETRY_SERIES Reading (raw = the whole file)."""
        opened = await self.request(ViatomCommand.FILE_OPEN, payload=file_name_payload(name))
        if not opened.ok or len(opened.payload) < 4:
            raise DeviceError(f"the ring refused to open night {name}", advice=ADVICE_RING, transient=False)
        size = int.from_bytes(opened.payload[:4], "little")
        data = bytearray()
        block = 0
        while len(data) < size:
            chunk = await self.request(ViatomCommand.FILE_READ, block=block)
            if not chunk.ok or not chunk.payload:
                raise DeviceError(f"the ring stopped sending night {name}", advice=ADVICE_RING)
            data += chunk.payload
            block += 1
        await self.request(ViatomCommand.FILE_CLOSE)
        try:
            decoded = decode_viatom_file(bytes(data[:size]))
        except DecodeError as exc:
            raise DeviceError(f"night {name} did not decode: {exc.reason}", advice=ADVICE_RING,
                              transient=False) from exc
        context = ReadingContext(self.identity, self.now(), self.timezone,
                                 self.clock.skew if self.clock is not None else None)
        return viatom_file_reading(decoded, context, raw=bytes(data[:size]))

    async def download(self, commit: Commit, watermarks: WatermarkStore) -> DownloadResult:
        """Every night newer than the high-water mark, oldest first; the mark moves after each commit."""
        key = self.identity.key
        mark = await watermarks.load(key)
        result = DownloadResult(requested_from=mark, high_water_mark=mark)
        try:
            for name in await self.nights():
                if not name.isdigit():
                    result.rejected += 1
                    continue
                if mark is not None and int(name) <= mark:
                    result.skipped_duplicates += 1
                    continue
                try:
                    reading = await self.download_night(name)
                except DeviceError as exc:
                    if exc.transient:
                        raise
                    result.rejected += 1  # a broken file stays on the ring; later nights still come
                    logger.warning("ring %s: %s", key, exc.message)
                    continue
                await commit(reading)
                mark = int(name)
                await watermarks.save(key, mark)
                result.committed += 1
                result.high_water_mark = mark
            result.complete = True
        except DeviceError as exc:
            result.error = exc
            logger.warning("ring %s download stopped after %d nights: %s", key, result.committed, exc.message)
        return result
