"""Pulse Oximeter Service (0x1822) driver: spot-checks, continuous readings kept as a series, stored spot-checks.

Continuous notifications (about one a second) are not stored one by one: `continuous_series` bins them into
fixed slots over a window and yields one OXIMETRY_SERIES Reading per window (DESIGN.md). PLX stored records
carry no sequence number, so a download is "all records" and the store's identity (device + type + device
time) removes what it already holds; there is no high-water mark to keep.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from healthhut.drivers.ble.base_driver import BleHealthDriver
from healthhut.drivers.ble.gatt_common import Commit, DownloadResult
from healthhut.drivers.ble.racp_download import download_racp_records
from healthhut.drivers.codecs.base import Codec
from healthhut.drivers.codecs.pulse_oximetry import (
    ContinuousMeasurement,
    PlxFeatures,
    SpotCheckCodec,
    decode_continuous,
    decode_plx_features,
)
from healthhut.drivers.codecs.racp import report_all_records
from healthhut.errors import DecodeError, DeviceError
from healthhut.readings import DeviceIdentity, Metric, Reading, ReadingKind, SampleSeries, TimeSource, Unit

logger = logging.getLogger(__name__)

SERVICE_UUID = "1822"
SPOT_CHECK_UUID = "2a5e"
CONTINUOUS_UUID = "2a5f"
FEATURES_UUID = "2a60"


def _sample(value: object) -> float | None:
    return float(value) if isinstance(value, Decimal) else None


def series_from_samples(samples: Sequence[tuple[datetime, float | None, float | None]], *, start: datetime,
                        period: timedelta, slots: int, device: DeviceIdentity, received_at: datetime) -> Reading:
    """Bin timed (SpO2, pulse) samples into `slots` slots of `period` from `start`; the last in a slot wins.

    Shared by every live oximeter driver that streams faster than the store should keep (PLX, BerryMed).
    """
    spo2: list[float | None] = [None] * slots
    pulse: list[float | None] = [None] * slots
    for at, spo2_value, pulse_value in samples:
        index = int((at - start) / period)
        if 0 <= index < slots:
            spo2[index], pulse[index] = spo2_value, pulse_value
    return Reading(
        kind=ReadingKind.OXIMETRY_SERIES, device=device, received_at=received_at,
        measured_at=start, time_source=TimeSource.RECEIPT,
        series={Metric.SPO2: SampleSeries(start, period, Unit.PERCENT, tuple(spo2)),
                Metric.PULSE_RATE: SampleSeries(start, period, Unit.PER_MINUTE, tuple(pulse))})


class BlePulseOximeterDriver(BleHealthDriver):
    name = "ble.pulse-oximeter"
    service_uuid = SERVICE_UUID
    live_characteristics: Mapping[str, Codec | None] = {SPOT_CHECK_UUID: SpotCheckCodec()}

    async def features(self) -> PlxFeatures | None:
        return await self.read_feature(FEATURES_UUID, decode_plx_features)

    async def continuous_series(self, *, window: timedelta = timedelta(minutes=1),
                                period: timedelta = timedelta(seconds=1), windows: int | None = None,
                                within: float | None = None) -> AsyncIterator[Reading]:
        """One OXIMETRY_SERIES Reading per `window` of continuous notifications (timed by receipt).

        A window closes when the first frame after it arrives; if the link drops, the partial window is
        still yielded before the DeviceError, so no received sample is lost.
        """
        stream = await self.connection.subscribe(CONTINUOUS_UUID)
        slots = max(1, int(window / period))
        done = 0
        carry: tuple[datetime, bytes] | None = None
        while windows is None or done < windows:
            samples: list[tuple[datetime, ContinuousMeasurement]] = []
            try:
                if carry is None:
                    first = await stream.next(within)
                    carry = (self.now(), first)
                start = carry[0]
                self._add(samples, *carry)
                while True:
                    frame = await stream.next(within)
                    at = self.now()
                    if at - start >= window:
                        carry = (at, frame)
                        break
                    self._add(samples, at, frame)
            except DeviceError:
                if samples:
                    yield self._series(samples, start, period, slots)
                raise
            yield self._series(samples, start, period, slots)
            done += 1

    def _add(self, samples: list[tuple[datetime, ContinuousMeasurement]], at: datetime, frame: bytes) -> None:
        try:
            samples.append((at, decode_continuous(frame)))
        except DecodeError as exc:
            self.rejected_frames += 1
            logger.warning("device %s sent a malformed continuous frame: %s", self.connection.address, exc.reason)

    def _series(self, samples: list[tuple[datetime, ContinuousMeasurement]], start: datetime,
                period: timedelta, slots: int) -> Reading:
        timed = [(at, _sample(m.normal.spo2), _sample(m.normal.pulse_rate)) for at, m in samples]
        return series_from_samples(timed, start=start, period=period, slots=slots, device=self.identity,
                                   received_at=self.now())

    async def download(self, commit: Commit) -> DownloadResult:
        """All stored spot-checks (PLXS supports no filter); each is committed as it arrives."""
        result = DownloadResult(requested_from=None)
        codec = SpotCheckCodec()

        async def commit_record(frame: bytes) -> None:
            readings = self.decode_readings(codec, frame)
            if not readings:
                result.rejected += 1
            for reading in readings:
                await commit(reading)
                result.committed += 1

        return await download_racp_records(self.connection, record_uuid=SPOT_CHECK_UUID,
                                           request=report_all_records(), result=result, on_record=commit_record,
                                           record_timeout=self.record_timeout, device_key=self.identity.key)
