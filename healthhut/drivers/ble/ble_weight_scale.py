"""Weight Scale (0x181D) driver: weight indications (stored ones arrive right after subscribing), features."""

from __future__ import annotations

from collections.abc import Mapping

from healthhut.drivers.ble.base_driver import BleHealthDriver
from healthhut.drivers.codecs.base import Codec
from healthhut.drivers.codecs.weight_scale import (
    WeightMeasurementCodec,
    WeightScaleFeature,
    decode_weight_scale_feature,
)
from healthhut.errors import DecodeError

SERVICE_UUID = "181d"
WEIGHT_UUID = "2a9d"
FEATURE_UUID = "2a9e"


class BleWeightScaleDriver(BleHealthDriver):
    name = "ble.weight-scale"
    service_uuid = SERVICE_UUID
    live_characteristics: Mapping[str, Codec | None] = {WEIGHT_UUID: WeightMeasurementCodec()}

    async def features(self) -> WeightScaleFeature | None:
        if not self.connection.has(FEATURE_UUID):
            return None
        try:
            return decode_weight_scale_feature(await self.connection.read(FEATURE_UUID))
        except DecodeError:
            return None
