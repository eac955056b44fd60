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

SERVICE_UUID = "181d"
WEIGHT_UUID = "2a9d"
FEATURE_UUID = "2a9e"


class BleWeightScaleDriver(BleHealthDriver):
    name = "ble.weight-scale"
    service_uuid = SERVICE_UUID
    live_characteristics: Mapping[str, Codec | None] = {WEIGHT_UUID: WeightMeasurementCodec()}

    async def features(self) -> WeightScaleFeature | None:
        return await self.read_feature(FEATURE_UUID, decode_weight_scale_feature)
