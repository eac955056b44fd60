"""One RACP stored-record download: request, hand each record frame to the driver, stop on the RACP answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from healthhut.drivers.ble.gatt_common import RACP_UUID, DownloadResult, RacpSession, racp_outcome
from healthhut.drivers.ble.transport_ble import BleConnection
from healthhut.drivers.codecs.racp import RacpRequest, RacpResponseValue
from healthhut.errors import DeviceError

logger = logging.getLogger(__name__)

# Decodes one record frame and commits it, updating the result's counters (the driver's commit policy).
RecordHandler = Callable[[bytes], Awaitable[None]]


async def download_racp_records(connection: BleConnection, *, record_uuid: str, request: RacpRequest,
                                result: DownloadResult, on_record: RecordHandler, record_timeout: float,
                                device_key: str) -> DownloadResult:
    """Send `request` and pass every `record_uuid` frame to `on_record` until the device's RACP response.

    The download is complete when the device answers SUCCESS or NO_RECORDS_FOUND. A dropped link or a
    device silent for `record_timeout` seconds ends it with `result.error` set; what `on_record` committed stays.
    """
    stream = await connection.subscribe(record_uuid, RACP_UUID)
    try:
        await RacpSession(connection, stream).request(request)
        while True:
            uuid, frame = await stream.next_tagged(record_timeout)
            if uuid == RACP_UUID:
                outcome = racp_outcome(frame)
                if outcome is None:
                    continue
                result.response = outcome.response
                result.complete = outcome.response in (RacpResponseValue.SUCCESS,
                                                       RacpResponseValue.NO_RECORDS_FOUND)
                break
            await on_record(frame)
    except DeviceError as exc:
        result.error = exc
        logger.warning("download from %s stopped after %d records: %s", device_key, result.committed,
                       exc.message)
    return result
