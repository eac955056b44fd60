"""Blood Pressure Service (0x1810) driver: live measurements, stored records over RACP, clock and identity."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from healthhut.drivers.ble.base_driver import BleHealthDriver
from healthhut.drivers.ble.gatt_common import (
    RACP_UUID,
    Commit,
    DownloadResult,
    RacpSession,
    WatermarkStore,
    reading_context,
)
from healthhut.drivers.ble.racp_download import download_racp_records
from healthhut.drivers.codecs.base import Codec
from healthhut.drivers.codecs.blood_pressure import (
    BloodPressureFeature,
    BloodPressureMeasurementCodec,
    decode_blood_pressure_feature,
)
from healthhut.drivers.codecs.bp_record import BloodPressureRecordCodec
from healthhut.drivers.codecs.racp import report_all_records, report_records_from
from healthhut.errors import DecodeError

logger = logging.getLogger(__name__)

SERVICE_UUID = "1810"
MEASUREMENT_UUID = "2a35"
INTERMEDIATE_CUFF_UUID = "2a36"
FEATURE_UUID = "2a49"
RECORD_UUID = "2b36"


class BleBloodPressureDriver(BleHealthDriver):
    """One connected cuff. Call `start()` first: it reads identity, battery and clock (and sets the clock).

    Live: measurement indications become Readings; intermediate cuff pressure is display data and is
    dropped. Stored: Blood Pressure Records (0x2B36) over RACP, from the device's high-water mark.
    """

    name = "ble.blood-pressure"
    service_uuid = SERVICE_UUID
    live_characteristics: Mapping[str, Codec | None] = {
        MEASUREMENT_UUID: BloodPressureMeasurementCodec(),
        INTERMEDIATE_CUFF_UUID: None,   # live cuff pressure while inflating: never a Reading
    }

    async def features(self) -> BloodPressureFeature | None:
        return await self.read_feature(FEATURE_UUID, decode_blood_pressure_feature)

    async def stored_count(self) -> int:
        control = await self.connection.subscribe(RACP_UUID)
        return await RacpSession(self.connection, control, timeout=self.record_timeout).count()

    async def download(self, commit: Commit, watermarks: WatermarkStore) -> DownloadResult:
        """Stored records newer than the device's high-water mark; each commits before the mark advances.

        A dropped link or a silent device ends the download with `complete=False` and `error` set; what was
        committed stays committed and the next download starts after it.
        """
        key = self.identity.key
        mark = await watermarks.load(key)
        request = report_records_from(mark + 1) if mark is not None else report_all_records()
        result = DownloadResult(requested_from=mark + 1 if mark is not None else None, high_water_mark=mark)
        codec = BloodPressureRecordCodec()

        async def commit_record(frame: bytes) -> None:
            nonlocal mark
            try:
                record = codec.decode(frame)
            except DecodeError as exc:
                result.rejected += 1
                logger.warning("device %s sent a malformed stored record: %s", key, exc.reason)
                return
            if mark is not None and record.sequence <= mark:
                result.skipped_duplicates += 1  # re-sent or duplicated record: already committed
                return
            context = reading_context(self.identity, self.clock, timezone=self.timezone, now=self.now)
            for reading in codec.readings(record, context):
                await commit(reading)
            mark = record.sequence
            await watermarks.save(key, mark)
            result.committed += 1
            result.high_water_mark = mark

        return await download_racp_records(self.connection, record_uuid=RECORD_UUID, request=request,
                                           result=result, on_record=commit_record,
                                           record_timeout=self.record_timeout, device_key=key)
