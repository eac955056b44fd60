"""An emulated Pulse Oximeter Service (0x1822) device: spot-checks, continuous stream, stored records, RACP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bumble.gatt import Characteristic, CharacteristicValue, Service

from healthhut.drivers.codecs.pulse_oximetry import (
    ContinuousMeasurement,
    PlxFeatures,
    PlxMeasurementStatus,
    PlxSupportedFeatures,
    SpotCheckMeasurement,
    encode_continuous,
    encode_plx_features,
    encode_spot_check,
)
from healthhut.drivers.emulators.ble_common import (
    INDICATE,
    NOTIFY,
    READ,
    READABLE,
    WRITE,
    WRITEABLE,
    DeviceClock,
    DeviceInfo,
    HealthPeripheral,
    Misbehaviour,
    RacpServer,
)

NAN_SPOT_CHECK = bytes.fromhex("14ff07ff07200000")  # SPOT-3: clock not set, NaN values, low perfusion


class PulseOximeter(HealthPeripheral):
    """Stored spot-checks are sent with "from storage" set; `spot_check()` and `stream()` send live data."""

    name = "EMU-PLX"
    advertised_services = ("1822",)
    default_info = DeviceInfo(model="EMU-OX1", serial="OX0001")

    def __init__(self, address: str, *, records: Sequence[SpotCheckMeasurement] = (),
                 clock: DeviceClock | None = None, behaviour: Misbehaviour | None = None,
                 name: str | None = None) -> None:
        super().__init__(address, clock=clock, behaviour=behaviour, name=name)
        self.records = list(records)
        self.racp = RacpServer(self._stored_frames, self._send_record, self._send_racp, sequence_filter=False)
        self.racp.misbehave(self.behaviour, self.disconnect)

    def _stored_frames(self) -> list[tuple[int, bytes]]:
        frames = []
        for index, record in enumerate(self.records, start=1):
            if index in self.behaviour.malformed_records:
                frames.append((index, b"\x0b\x5f"))
                continue
            status = (record.measurement_status or PlxMeasurementStatus(0)) | PlxMeasurementStatus(0x0200)
            frames.append((index, encode_spot_check(replace(record, measurement_status=status))))
        return frames

    def profile_services(self) -> list[Service]:
        features = PlxFeatures(PlxSupportedFeatures.SPOT_CHECK_STORAGE | PlxSupportedFeatures.SPOT_CHECK_TIMESTAMP)
        self.spot = Characteristic("2A5E", INDICATE, READABLE, b"", descriptors=self.behaviour.descriptors())
        self.continuous = Characteristic("2A5F", NOTIFY, READABLE, b"", descriptors=self.behaviour.descriptors())
        self.racp_char: Characteristic[bytes] = Characteristic("2A52", WRITE | INDICATE, WRITEABLE,
                                                               CharacteristicValue(write=self.racp.on_write))
        return [Service("1822", [self.spot, self.continuous,
                                 Characteristic("2A60", READ, READABLE, encode_plx_features(features)),
                                 self.racp_char])]

    def on_disconnect(self) -> None:
        self.racp.cancel()

    async def _send_record(self, frame: bytes) -> None:
        await self.send(self.spot, frame)

    async def _send_racp(self, frame: bytes) -> None:
        assert self.device is not None
        await self.device.indicate_subscribers(self.racp_char, frame)

    async def spot_check(self, measurement: SpotCheckMeasurement | None) -> None:
        """Indicate a spot-check (None: NaN values with "clock not set", as after a finger-out)."""
        await self.send(self.spot, NAN_SPOT_CHECK if measurement is None else encode_spot_check(measurement))

    async def stream(self, samples: Sequence[ContinuousMeasurement]) -> None:
        for sample in samples:
            await self.send(self.continuous, encode_continuous(sample), indicate=False)
